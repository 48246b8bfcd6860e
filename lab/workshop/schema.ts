import * as z from 'zod';
import { NAME_PATTERN, NAME_RULE } from '../topology/names.js';
import { POD_NETWORK_MODES } from '../topology/schema.js';

/**
 * A workshop is data beside its topology (topologies/<scenario>.workshop.yaml): an ordered
 * list of steps, each explaining what happens, showing a command to look with, and asking a
 * question whose answer the lab reads from the LIVE lab when the learner answers. The
 * engine has no per-scenario code: adding a scenario's workshop is writing one file.
 *
 * Text fields may use {lab}, replaced by the name of the lab the learner runs
 * (so `lab rules {lab} node1` works for a lab brought up with --name).
 */

const hostName = z.string().regex(NAME_PATTERN, 'must be a host name of the topology, e.g. node1');
const ipv4 = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'must be an IPv4 address like 10.240.0.4');
const ipAddress = z.string().regex(/^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f]*:[0-9a-f:]+)$/, 'must be an IPv4 or IPv6 address like 10.240.0.4 or fd00:10:240::1');
/** "10.240.0.4:32000" or "10.240.0.4" (any port); IPv6 as "[fd00:10:240::4]:32000" or "fd00:10:240::4". */
const address = z.string().regex(/^(\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?|\[[0-9a-f:]+\]:\d{1,5}|[0-9a-f]*:[0-9a-f:]+)$/, 'must be an address like 10.240.0.4, 10.240.0.4:32000 or [fd00:10:240::4]:32000');
const target = z.string().regex(/^([^\s:[\]]+|\[[0-9a-f:]+\]):\d{1,5}$/, 'must be host:port, e.g. 10.240.0.4:32000 or [fd00:10:240::4]:32000');

/** A command for the learner. A plain string is shown and can be run with `run`. */
export const lookSchema = z.union([
  z.string().min(1),
  z.strictObject({
    cmd: z.string().min(1),
    /** Shown after the command, e.g. "in a second terminal". */
    note: z.string().optional(),
    /** false: shown only; `run` leaves it to the learner (pipes, long-running commands). */
    run: z.boolean().default(true),
    /**
     * A capture: `run` starts it first, waits until it reports "listening on",
     * runs the step's other commands, then stops it.
     */
    background: z.boolean().default(false),
  }),
]);

/** The connection-tracking entry of the learner's most recent matching connection on a node. */
const conntrackCheck = z.strictObject({
  /** A node, or several (a load balancer may hand the connection to any of them): the most recent entry among all. */
  node: z.union([hostName, z.array(hostName).min(1)]),
  original: z.strictObject({ src: address.optional(), dst: address.optional() }),
  /** A tuple's end as ip:port, or "node": the node whose table holds the entry. */
  field: z.enum(['original.src', 'original.dst', 'reply.src', 'reply.dst', 'node']),
});

/** A value read from one of kube-proxy's rules in a node's live iptables-save. */
const ruleCheck = z.strictObject({
  node: hostName,
  /** ipv6: the node's ip6tables-save (the IPv6 proxier of a dual-stack cluster). */
  family: z.enum(['ipv4', 'ipv6']).optional(),
  table: z.enum(['nat', 'filter']).default('nat'),
  /** Chain name, "*" allowed: KUBE-SVC-* */
  chain: z.string().min(1),
  /** The rule's --comment, "*" allowed: "default/web:https -> *" */
  comment: z.string().optional(),
  /** The rule's -j target, "*" allowed. */
  jump: z.string().optional(),
  /** Which matching rule, counting from 1. */
  nth: z.number().int().min(1).default(1),
  /** An option of the rule ("-j", "--probability", "--to-destination", "--dport"), its chain, or how many rules match. */
  field: z.string().regex(/^(-{1,2}[a-z-]+|chain|count)$/, 'must be an option such as -j or --probability, or "chain", or "count"'),
});

/** Fresh requests sent now, until the named pod answers; a field of its answer. */
const requestCheck = z.strictObject({
  from: hostName,
  to: target,
  endpoint: hostName.optional(),
  /** Of the pod's answer (client: the source it saw; podIP: podIP:port), or target: the address:port curl connected to (after any DNS lookup). */
  field: z.enum(['client', 'pod', 'podIP', 'node', 'target']),
});

/** A fresh capture at host:interface while fresh requests are sent: a field of the flow's first packet there. */
const captureCheck = z.strictObject({
  at: z.string().regex(/^[a-z][a-z0-9-]*:[a-zA-Z0-9_.-]+$/, 'must be host:interface, e.g. node2:eth0'),
  from: hostName,
  to: target,
  endpoint: hostName.optional(),
  /** tcpdump-style flags of the packet: S (the request's SYN), S. (the answer's SYN-ACK). */
  flags: z.string().default('S'),
  field: z.enum(['src', 'dst']),
  /** A VXLAN datagram's outer header (UDP node to node) instead of the packet it carries (the default). */
  outer: z.boolean().default(false),
});

/**
 * A value read from kube-proxy's table in nftables mode (`nft list table ip kube-proxy` on the
 * node): an element of a verdict map, a set, or a rule of a chain. Exactly one of map, set, chain.
 */
const nftCheck = z.strictObject({
  node: hostName,
  /** ip6: `table ip6 kube-proxy` (the IPv6 proxier of a dual-stack cluster). */
  family: z.enum(['ip', 'ip6']).optional(),
  /** A verdict map ("service-ips", "*" allowed). */
  map: z.string().min(1).optional(),
  /** The map element's key as nft prints it: "172.31.0.5 . tcp . 443", "tcp . 32000". */
  key: z.string().min(1).optional(),
  /** A set ("affinity-*"). */
  set: z.string().min(1).optional(),
  /** A chain ("service-*", "*" allowed). */
  chain: z.string().min(1).optional(),
  /** A regular expression a rule of the chain must match; its first group is the value of field "match". */
  rule: z.string().min(1).optional(),
  /** Which matching rule (or chain), counting from 1. */
  nth: z.number().int().min(1).default(1),
  /**
   * verdict: the map element's verdict (its target chain for goto/jump); elements: a set's or map's
   * elements (any is right); timeout: a set's timeout in seconds; chain: the matching chain's name;
   * match: the rule's first group; count: matching rules, or the set's or map's elements.
   */
  field: z.enum(['verdict', 'elements', 'timeout', 'chain', 'match', 'count']),
});

/** A node's neighbour entry on a device (vxlan: the peer VTEP's MAC for its pod CIDR's address). */
const neighbourCheck = z.strictObject({
  node: hostName,
  dev: z.string().min(1),
  /** IPv4 (an ARP entry) or IPv6 (one neighbour discovery made). */
  to: ipAddress,
  field: z.enum(['lladdr']),
});

/** A node's forwarding-database entry on a device (vxlan: where frames for a VTEP MAC are sent). */
const fdbCheck = z.strictObject({
  node: hostName,
  dev: z.string().min(1),
  mac: z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, 'must be a MAC address like 0e:fa:0a:f0:00:05'),
  field: z.enum(['dst']),
});

/** The route a host uses toward an address: its outgoing interface or next hop. */
const routeCheck = z.strictObject({
  node: hostName,
  to: ipv4,
  /** dev, via: of the route `ip route get` picks; proto: who installed the most specific route holding it (bird, kernel, static, boot). */
  field: z.enum(['dev', 'via', 'proto']),
});

export const checkSchema = z.strictObject({
  conntrack: conntrackCheck.optional(),
  rule: ruleCheck.optional(),
  request: requestCheck.optional(),
  capture: captureCheck.optional(),
  route: routeCheck.optional(),
  nft: nftCheck.optional(),
  neighbour: neighbourCheck.optional(),
  fdb: fdbCheck.optional(),
  /** A fixed answer (one or several accepted spellings), for a question about concepts. */
  value: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
});

export const ANSWER_KINDS = ['address', 'pod', 'name', 'number', 'text'] as const;
export type AnswerKind = (typeof ANSWER_KINDS)[number];
export const PORT_MODES = ['optional', 'required', 'ignore'] as const;
export type PortMode = (typeof PORT_MODES)[number];

/**
 * A step as it reads in one mode of the lab (kube-proxy's nftables mode, a pod-network mode): the
 * fields it changes. A variant that gives a check asks a different question: the base step's kind,
 * port, hints and feedback are dropped unless the variant gives its own.
 */
const stepVariantSchema = z.strictObject({
  title: z.string().min(1).optional(),
  explain: z.string().min(1).optional(),
  look: z.array(lookSchema).optional(),
  question: z.string().min(1).optional(),
  check: checkSchema.optional(),
  kind: z.enum(ANSWER_KINDS).optional(),
  port: z.enum(PORT_MODES).optional(),
  hints: z.array(z.string()).optional(),
  feedback: z.array(z.strictObject({ answer: z.string(), say: z.string() })).optional(),
  debrief: z.string().optional(),
});
export type StepVariant = z.output<typeof stepVariantSchema>;

export const PROXY_MODES = ['iptables', 'nftables'] as const;
const podNetworkMode = z.enum(POD_NETWORK_MODES);

export const stepSchema = z.strictObject({
  /** Stable identifier: progress is recorded by it, so steps can be reordered or added later. */
  id: z.string().regex(NAME_PATTERN, NAME_RULE),
  title: z.string().min(1),
  /** The step of the seed walkthrough this follows, e.g. "1.2.1". */
  seed: z.string().optional(),
  /** What happens at this step, in the project's words. */
  explain: z.string().min(1),
  look: z.array(lookSchema).default([]),
  question: z.string().min(1),
  check: checkSchema,
  /** How to compare answers; inferred from the check when omitted. */
  kind: z.enum(ANSWER_KINDS).optional(),
  /** For addresses: may the learner leave out the port (optional), must they give it (required), or is it never compared (ignore)? */
  port: z.enum(PORT_MODES).default('optional'),
  /** Given one by one after wrong answers. */
  hints: z.array(z.string()).default([]),
  /** Targeted replies to answers people commonly give. */
  feedback: z.array(z.strictObject({ answer: z.string(), say: z.string() })).default([]),
  /** Shown once the step is answered (or skipped): why the answer is what it is. */
  debrief: z.string().optional(),
  /** The kube-proxy modes the step is asked in (default: both). */
  proxyModes: z.array(z.enum(PROXY_MODES)).min(1).optional(),
  /** The pod-network modes the step is asked in (default: every one). */
  podNetworks: z.array(podNetworkMode).min(1).optional(),
  /** The step in a lab whose kube-proxy runs in nftables mode (applied after any podNetwork variant). */
  nftables: stepVariantSchema.optional(),
  /** The step in a pod-network mode: { vxlan: { … }, bgp: { … } }. */
  podNetwork: z.partialRecord(podNetworkMode, stepVariantSchema).optional(),
});

export const workshopSchema = z.strictObject({
  title: z.string().min(1),
  /** The seed document this follows. */
  seed: z.string().default(''),
  intro: z.string().default(''),
  outro: z.string().default(''),
  /** Where `--check` sends its health-check requests; the walkthrough's traffic when omitted. */
  entry: z.strictObject({ from: hostName, to: target }).optional(),
  steps: z.array(stepSchema).min(1),
});

export type Workshop = z.output<typeof workshopSchema>;
export type WorkshopStep = z.output<typeof stepSchema>;
export type Check = z.output<typeof checkSchema>;
export type Look = z.output<typeof lookSchema>;

/** The one kind of check a step holds (the file check makes sure there is exactly one). */
export function checkKind(c: Check): keyof Check {
  const kinds = (Object.keys(c) as (keyof Check)[]).filter((k) => c[k] !== undefined);
  return kinds[0]!;
}

/** How answers to a step are compared, when the file does not say. */
export function answerKind(step: WorkshopStep): AnswerKind {
  if (step.kind) return step.kind;
  const c = step.check;
  if (c.conntrack) return c.conntrack.field === 'node' ? 'name' : 'address';
  if (c.capture) return 'address';
  if (c.request) return c.request.field === 'pod' || c.request.field === 'node' ? 'name' : 'address';
  if (c.route) return c.route.field === 'via' ? 'address' : 'name';
  if (c.neighbour) return 'name';
  if (c.fdb) return 'address';
  if (c.nft) {
    if (c.nft.field === 'count' || c.nft.field === 'timeout') return 'number';
    if (c.nft.field === 'elements') return 'text';
    return 'name';
  }
  if (c.rule) {
    if (c.rule.field === 'count' || c.rule.field === '--probability') return 'number';
    if (c.rule.field === '--to-destination' || c.rule.field === '-d' || c.rule.field === '-s') return 'address';
    return 'name';
  }
  return 'text';
}

export const lookCommand = (l: Look) => (typeof l === 'string' ? { cmd: l, note: undefined, run: true, background: false } : l);
