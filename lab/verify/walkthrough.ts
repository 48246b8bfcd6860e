import { dirname, resolve } from 'node:path';
import * as z from 'zod';
import { InputError, type InputProblem } from '../errors.js';
import { POD_NETWORK_MODES, type PodNetworkMode, type Topology } from '../topology/schema.js';
import { displayPath } from '../topology/paths.js';
import { YamlFile } from '../util/yaml-file.js';
import { senderAddress } from './flows.js';

/**
 * A walkthrough is data beside its topology: the traffic to send, where to watch,
 * and for each documented step what the wire (or conntrack, or the pod) must show.
 * The verify engine has no per-scenario code.
 *
 * Address patterns: "10.240.0.4:32000", "10.240.0.4:*", "10.240.0.4", or a flow variable:
 *   $client  the source the request was sent from (ip:port)
 *   $target  where it was sent (ip:port)
 *   $pod     the endpoint that answered (podIP:targetPort)
 *   $snat    the source the pod saw (after any SNAT; equals $client when there is none)
 * with ".ip" for the address alone ($snat.ip) and ":*" for any port ($snat.ip:*).
 */

const pattern = z.string().min(1);
const observation = z.string().regex(/^[a-z][a-z0-9-]*:[a-zA-Z0-9_.-]+$/, 'must be host:interface, e.g. node1:eth0');

const packetExpectation = z.strictObject({ src: pattern, dst: pattern, flags: z.string().optional() });
const hostName = z.string().min(1);

const expectSchema = z
    .strictObject({
      /** A packet of this flow, seen at `at`; with `mss`, a SYN or SYN-ACK advertising that maximum segment size. */
      packet: packetExpectation.extend({ mss: z.number().int().min(1).max(65535).optional() }).optional(),
      /**
       * A packet of this flow at `at` in an Ethernet frame addressed to one of host `to`'s
       * interfaces (its MAC), or with `absent`, no such frame: who the frame was handed to on that segment.
       */
      frame: z.strictObject({ src: pattern, dst: pattern, to: hostName, absent: z.literal(true).optional() }).optional(),
      /**
       * A VXLAN datagram at `at`: the outer UDP header from `outer.src` to `outer.dst` (ip or
       * ip:port), carrying a packet of this flow matching `inner`, decoded from the capture.
       */
      encapsulated: z.strictObject({ outer: z.strictObject({ src: pattern, dst: pattern }), vni: z.number().int().min(0).optional(), inner: packetExpectation }).optional(),
      /** No packet of this flow at `at`. */
      noPacket: z.literal(true).optional(),
      /** The connection-tracking entry on node `at`: original and reply tuples. */
      conntrack: z.strictObject({ original: packetExpectation, reply: packetExpectation }).optional(),
      /** What the pod reported as the client address it saw. */
      answer: z.strictObject({ client: pattern }).optional(),
      /** An address that appears on no captured packet at all, for any flow. */
      never: z.string().optional(),
      /**
       * The route node or router `at` uses toward an address: its outgoing interface, and when
       * named its gateway and the protocol that installed it (bird: learned by BGP).
       */
      route: z.strictObject({ to: pattern, dev: z.string(), via: z.string().optional(), proto: z.string().optional() }).optional(),
      /** The BIRD of node or router `at` has an Established BGP session with host `peer` (podNetwork mode bgp). */
      bgpSession: z.strictObject({ peer: hostName }).optional(),
      /** kube-proxy's DNAT rule toward this endpoint on node `at` counted this connection. */
      dnatRule: z.strictObject({ to: pattern }).optional(),
      /** The request got no answer (dropped or refused), as this path expects. */
      noAnswer: z.literal(true).optional(),
      /** Over all requests of this traffic, each endpoint's share lies within [min, max]. */
      share: z.strictObject({ min: z.number().min(0).max(1), max: z.number().min(0).max(1), endpoints: z.array(z.string()).min(1) }).optional(),
      /** Every request of this traffic reached one and the same endpoint. */
      sameEndpoint: z.literal(true).optional(),
      /**
       * An HTTP response captured at \`at\` on any connection, not only this traffic's (the load
       * balancer's health checks of a node, say): from \`src\` to \`dst\`, with this status code.
       */
      httpResponse: z.strictObject({ src: pattern, dst: pattern, status: z.number().int().min(100).max(599) }).optional(),
      /**
       * A rule of node `at` counted packets during this run: the first rule of that table and
       * chain jumping to `jump` (e.g. filter KUBE-EXTERNAL-SERVICES DROP), shown with its comment.
       */
      rule: z
        .strictObject({
          table: z.enum(['nat', 'filter']),
          chain: z.string(),
          jump: z.string(),
          /**
           * The same decision in nftables mode, which has no rule counters: the verdict map
           * element that holds it, e.g. { map: no-endpoint-nodeports, verdict: drop }.
           */
          nftables: z.strictObject({ map: z.string(), verdict: z.string() }).optional(),
        })
        .optional(),
      /**
       * sessionAffinity: on node `at`, the iptables "recent" list of the KUBE-SEP chain that DNATs
       * to `endpoint` holds `client`'s address, and no other endpoint's list does.
       */
      recent: z.strictObject({ client: pattern, endpoint: pattern }).optional(),
      /**
       * sessionAffinity's timeout, for traffic sent with afterAffinityExpiry: node `at` remembered
       * `client`, forgot it after the timeout (polled), and balanced its next connection afresh.
       */
      affinityExpired: z.strictObject({ client: pattern }).optional(),
      /** Every answered request of this traffic was translated by this node: all of one IP's traffic entered it (MetalLB's layer-2 mode). */
      allVia: hostName.optional(),
      /**
       * ARP at capture point `at` during the run: `asker` asked who has `ip` (the lab forgets the
       * asker's neighbour entry first, so it must ask), and node `answeredBy` answered with its MAC,
       * and no other MAC did (MetalLB's layer-2 leader).
       */
      arp: z.strictObject({ ip: z.string(), asker: hostName, answeredBy: hostName }).optional(),
      /**
       * The last layer-2 takeover of `ip` (captured by the sync that made it, on the routers' node
       * networks): node `from` sent a gratuitous ARP for it, and host `moves`'s neighbour entry went
       * from another MAC to `from`'s without `moves` asking who has the IP.
       */
      gratuitousArp: z.strictObject({ ip: z.string(), from: hostName, moves: hostName }).optional(),
    });

/** What a step says differently in one pod network mode (podNetwork.mode): any of these replace the step's own. */
const stepInModeSchema = z.strictObject({
  title: z.string().optional(),
  note: z.string().optional(),
  at: z.string().optional(),
  skip: z.string().optional(),
  expect: expectSchema.optional(),
});

const podNetworkMode = z.enum(POD_NETWORK_MODES);

export const stepSchema = z.strictObject({
  step: z.string(),
  title: z.string(),
  /** An observation point (host:ifname), or a host for conntrack/route/rule/answer checks. */
  at: z.string().optional(),
  /** Where the seed document simplifies or errs, and what the wire shows instead. */
  note: z.string().optional(),
  /** Steps that do not apply on this path, shown as such. */
  skip: z.string().optional(),
  /** In nftables mode, the title and note in nftables' own names (maps, service-/endpoint- chains). */
  nftables: z.strictObject({ title: z.string().optional(), note: z.string().optional() }).optional(),
  /** Only in these pod network modes (podNetwork.mode); the step is left out in the others. */
  podNetworks: z.array(podNetworkMode).min(1).optional(),
  /** Per pod network mode, what this step says and checks instead (the wire differs between modes). */
  podNetwork: z.partialRecord(podNetworkMode, stepInModeSchema).optional(),
  expect: expectSchema.optional(),
});

export const trafficSchema = z.strictObject({
  /** A client, a pod, or a node (a node sends from 127.0.0.1 to a 127.0.0.1 address: a localhost NodePort). */
  from: z.string(),
  /**
   * UDP: each request is one datagram from its own source port, a DNS query (class CH, TXT
   * hostname.bind), and its one answer: the DNS pod answers as a DNS server (its name and the
   * client it saw, in the TXT), the HTTP pods with the same JSON as over TCP. Unset: TCP (HTTP).
   */
  protocol: z.enum(['TCP', 'UDP']).optional(),
  /** host:port, or a service DNS name:port resolved inside the sender's namespace. */
  to: z.string(),
  /**
   * The address to send from (curl binds to it): one of the sender's own, e.g. a client's or a
   * node's extraAddresses. Unset: its primary address.
   */
  source: z.string().optional(),
  /** Send at least this many requests (distribution checks want many). */
  requests: z.number().int().min(1).max(1000).default(1),
  /** Keep sending, up to this many, until every path of this traffic found its flow. */
  maxRequests: z.number().int().min(1).max(1000).default(40),
  /** Seconds curl waits for an answer; a dropped request costs this much. */
  timeout: z.number().min(0.1).max(10).default(1),
  /**
   * A node: before sending, wait until its kernel has forgotten the sender's sessionAffinity (every
   * affinity entry of the sender older than the timeout, or gone), polling its state with a deadline.
   */
  afterAffinityExpiry: z.string().optional(),
});

export const pathSchema = z.strictObject({
  name: z.string(),
  summary: z.string().default(''),
  traffic: trafficSchema.optional(),
  /**
   * The pod whose answer selects this path's flow; omit with `outcome: no-answer`. `any`: the
   * first answered request, whichever pod it reached (for choices the lab cannot predict, such
   * as the pod sessionAffinity sticks to).
   */
  endpoint: z.string().optional(),
  outcome: z.enum(['answered', 'no-answer']).default('answered'),
  /**
   * The node whose conntrack holds this path's connection (the one that translated it), for
   * traffic that may enter the cluster at several nodes (an ECMP load balancer).
   */
  via: z.string().optional(),
  steps: z.array(stepSchema).min(1),
});

export const walkthroughSchema = z.strictObject({
  title: z.string(),
  seed: z.string().default(''),
  traffic: trafficSchema,
  /** Where tcpdump listens: host:ifname. */
  observe: z.array(observation).min(1),
  /** Per pod network mode, more observation points (interfaces only that mode makes: flannel.1). */
  podNetwork: z.partialRecord(podNetworkMode, z.strictObject({ observe: z.array(observation).min(1) })).optional(),
  paths: z.array(pathSchema).min(1),
});

/** `endpoint: any` on a path: whichever pod answers. */
export const ANY_ENDPOINT = 'any';

export type Walkthrough = z.output<typeof walkthroughSchema>;
export type WalkthroughPath = z.output<typeof pathSchema>;
export type Step = z.output<typeof stepSchema>;
export type Traffic = z.output<typeof trafficSchema>;

export interface LoadedWalkthrough {
  walkthrough: Walkthrough;
  path: string;
}

/**
 * The walkthrough as it reads in one pod network mode: that mode's observation points added,
 * steps of other modes left out, and each step's words and check for the mode put in its place.
 */
export function inPodNetwork(w: Walkthrough, mode: PodNetworkMode): Walkthrough {
  const steps = (p: WalkthroughPath) => p.steps.filter((s) => !s.podNetworks || s.podNetworks.includes(mode)).map((s) => stepInMode(s, mode));
  return { ...w, observe: observeIn(w, mode), paths: w.paths.map((p) => ({ ...p, steps: steps(p) })) };
}

const observeIn = (w: Walkthrough, mode: PodNetworkMode) => [...w.observe, ...(w.podNetwork?.[mode]?.observe ?? [])];
const stepInMode = (s: Step, mode: PodNetworkMode): Step => ({ ...s, ...s.podNetwork?.[mode] });

/**
 * Load the walkthrough named by a topology, check its references against the topology (in every
 * pod network mode), and return it as it reads in the topology's mode.
 */
export function loadWalkthrough(t: Topology, topologyPath: string): LoadedWalkthrough {
  if (!t.walkthrough) {
    throw new InputError([{ file: displayPath(topologyPath), field: 'walkthrough', message: 'this topology names no walkthrough file, so there is nothing to verify' }]);
  }
  const path = resolve(dirname(topologyPath), t.walkthrough);
  const file = YamlFile.read(path, displayPath(path));
  const walkthrough = file.validate(walkthroughSchema);
  const problems = checkWalkthrough(walkthrough, t, file);
  if (problems.length > 0) throw new InputError(problems);
  return { walkthrough: inPodNetwork(walkthrough, t.podNetwork.mode), path };
}

/** The addresses a sender may send from: its own, then its extraAddresses (clients and nodes). */
export function senderAddresses(t: Topology, host: string): string[] {
  const h = [...t.clients, ...t.nodes, ...t.pods].find((x) => x.name === host);
  if (!h) return [];
  return [h.address, ...('extraAddresses' in h ? (h.extraAddresses ?? []) : [])];
}

/** The sending host of a walkthrough's traffic (a client, pod or node) and the address it sends from: `source`, 127.0.0.1 for a node's localhost NodePort, else its own address of the destination's family. */
export function trafficSender(t: Topology, traffic: Pick<Traffic, 'from' | 'source' | 'to'>): { name: string; address: string } {
  const h = [...t.clients, ...t.pods, ...t.nodes].find((x) => x.name === traffic.from)!;
  if (traffic.source !== undefined) return { name: h.name, address: traffic.source };
  // A node calling a loopback target (a localhost NodePort) sends from 127.0.0.1.
  if (traffic.to.startsWith('127.') && t.nodes.some((n) => n.name === h.name)) return { name: h.name, address: '127.0.0.1' };
  return { name: h.name, address: senderAddress(h, traffic.to)! };
}

function checkWalkthrough(w: Walkthrough, t: Topology, file: YamlFile): InputProblem[] {
  const problems: InputProblem[] = [];
  const hosts = new Set([...t.nodes, ...t.clients, ...t.pods, ...t.routers].map((h) => h.name));
  const pods = new Set(t.pods.map((p) => p.name));
  const nodes = new Set(t.nodes.map((n) => n.name));
  const routing = new Set([...t.nodes, ...t.routers].map((h) => h.name));
  const senders = new Set([...t.clients, ...t.pods, ...t.nodes].map((h) => h.name));
  const checkTraffic = (tr: Traffic, path: PropertyKey[]) => {
    if (!senders.has(tr.from)) problems.push(file.problem([...path, 'from'], `"${tr.from}" is not a client, pod or node of this topology`));
    else if (tr.source !== undefined && !senderAddresses(t, tr.from).includes(tr.source)) {
      problems.push(file.problem([...path, 'source'], `${tr.source} is not an address of ${tr.from} (it has ${senderAddresses(t, tr.from).join(', ')}; add it to its extraAddresses)`));
    }
    const sender = [...t.clients, ...t.pods, ...t.nodes].find((h) => h.name === tr.from);
    if (sender && tr.source === undefined && !tr.to.startsWith('127.') && !senderAddress(sender, tr.to)) problems.push(file.problem([...path, 'to'], `is an IPv6 destination, but "${tr.from}" has no address6 to send from`));
    if (tr.requests > tr.maxRequests) problems.push(file.problem([...path, 'requests'], 'is larger than maxRequests'));
    if (tr.afterAffinityExpiry !== undefined && !nodes.has(tr.afterAffinityExpiry)) problems.push(file.problem([...path, 'afterAffinityExpiry'], `"${tr.afterAffinityExpiry}" is not a node of this topology`));
  };
  checkTraffic(w.traffic, ['traffic']);
  w.observe.forEach((o, i) => {
    const host = o.split(':')[0]!;
    if (!hosts.has(host)) problems.push(file.problem(['observe', i], `no host named "${host}" in the topology`));
  });
  w.paths.forEach((p, i) => {
    if (p.traffic) checkTraffic(p.traffic, ['paths', i, 'traffic']);
    if (p.outcome === 'answered' && !p.endpoint) problems.push(file.problem(['paths', i, 'endpoint'], 'is required for a path whose outcome is "answered"'));
    if (p.endpoint && p.endpoint !== ANY_ENDPOINT && !pods.has(p.endpoint)) problems.push(file.problem(['paths', i, 'endpoint'], `no pod named "${p.endpoint}"`));
    if (p.via && !nodes.has(p.via)) problems.push(file.problem(['paths', i, 'via'], `"${p.via}" is not a node of this topology`));
    p.steps.forEach((step, j) => {
      // The step as each pod network mode reads it: a problem is reported once, at the step.
      const seen = new Set<string>();
      for (const mode of POD_NETWORK_MODES) {
        if (step.podNetworks && !step.podNetworks.includes(mode)) continue;
        const where = step.podNetwork?.[mode] ? ['paths', i, 'steps', j, 'podNetwork', mode] : ['paths', i, 'steps', j];
        for (const problem of stepProblems(stepInMode(step, mode), observeIn(w, mode), where)) {
          const key = `${problem.field}\0${problem.message}`;
          if (!seen.has(key)) problems.push(problem);
          seen.add(key);
        }
      }
    });
  });
  return problems;

  function stepProblems(s: Step, observe: string[], here: PropertyKey[]): InputProblem[] {
    const out: InputProblem[] = [];
    const e = s.expect;
    if (!e) {
      if (!s.skip) out.push(file.problem(here, 'a step needs `expect` or `skip`'));
      return out;
    }
    const kinds = Object.keys(e).filter((k) => (e as Record<string, unknown>)[k] !== undefined);
    if (kinds.length !== 1) out.push(file.problem([...here, 'expect'], `must hold exactly one check (has ${kinds.join(', ') || 'none'})`));
    const needsPoint = e.packet || e.noPacket || e.httpResponse || e.frame || e.encapsulated;
    const needsNode = e.conntrack || e.dnatRule || e.rule || e.recent || e.affinityExpired;
    const needsRouting = e.route || e.bgpSession;
    if (needsPoint && !observe.includes(s.at ?? '')) out.push(file.problem([...here, 'at'], `"${s.at ?? ''}" is not one of the observation points in \`observe\``));
    if (needsNode && !nodes.has(s.at ?? '')) out.push(file.problem([...here, 'at'], `"${s.at ?? ''}" is not a node of this topology`));
    if (needsRouting && !routing.has(s.at ?? '')) out.push(file.problem([...here, 'at'], `"${s.at ?? ''}" is not a node or router of this topology`));
    if (e.bgpSession && !routing.has(e.bgpSession.peer)) out.push(file.problem([...here, 'expect', 'bgpSession', 'peer'], `"${e.bgpSession.peer}" is not a node or router of this topology`));
    if (e.allVia && !nodes.has(e.allVia)) out.push(file.problem([...here, 'expect', 'allVia'], `"${e.allVia}" is not a node of this topology`));
    if (e.arp) {
      if (!observe.includes(s.at ?? '')) out.push(file.problem([...here, 'at'], `"${s.at ?? ''}" is not one of the observation points in \`observe\``));
      for (const k of ['asker', 'answeredBy'] as const) if (!hosts.has(e.arp[k])) out.push(file.problem([...here, 'expect', 'arp', k], `no host named "${e.arp[k]}" in the topology`));
    }
    if (e.gratuitousArp) {
      if (!nodes.has(e.gratuitousArp.from)) out.push(file.problem([...here, 'expect', 'gratuitousArp', 'from'], `"${e.gratuitousArp.from}" is not a node of this topology`));
      if (!hosts.has(e.gratuitousArp.moves)) out.push(file.problem([...here, 'expect', 'gratuitousArp', 'moves'], `no host named "${e.gratuitousArp.moves}" in the topology`));
    }
    if (e.frame && !hosts.has(e.frame.to)) out.push(file.problem([...here, 'expect', 'frame', 'to'], `no host named "${e.frame.to}" in the topology`));
    e.share?.endpoints.forEach((ep, k) => {
      if (!pods.has(ep)) out.push(file.problem([...here, 'expect', 'share', 'endpoints', k], `no pod named "${ep}"`));
    });
    return out;
  }
}
