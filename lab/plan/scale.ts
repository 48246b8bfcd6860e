import { ExitCode, LabError } from '../errors.js';
import type { EndpointHints } from './topology-hints.js';
import { bridgeAddressOf } from '../topology/relations.js';
import { IFNAMSIZ, NAME_PATTERN, podVethName } from '../topology/names.js';
import { LIMITS, type Node, type Pod, type Topology } from '../topology/schema.js';
import { cidrContains, formatIPv4, isNetworkOrBroadcast, parseCidr, parseIPv4 } from '../util/ipv4.js';
import { firstHost6, formatIPv6, parseCidr6 } from '../util/ipv6.js';
import { servicePorts, type Endpoint, type EndpointConditions } from './endpoints.js';

/**
 * Endpoint changes on a running lab, as data. Pure: `lab scale`, `lab kill` and `lab revive`
 * compute here what the lab becomes, and the running lab is always the topology file (with its
 * --set overrides) plus these changes, recorded in the lab's state.
 */

/** What a running lab changed about its pods since `up`. */
export interface PodChanges {
  /** Pods created by `lab scale`, beyond those of the topology file. */
  added: Pod[];
  /** Pods of the topology file that `lab scale` removed. */
  removed: string[];
  /** Readiness set at run time: false after `lab kill`, true after `lab revive`. */
  readiness: Record<string, boolean>;
  /** Pods being deleted that serve out their grace period (`lab kill --terminating`); `lab revive` clears it. */
  terminating?: Record<string, boolean>;
  /** Per scaled group, what its new pods look like (kept so a group scaled to 0 can grow again). */
  templates: Record<string, PodTemplate>;
}

export type PodTemplate = Pick<Pod, 'labels' | 'workload'>;

export const MAX_REPLICAS = 64;

export function emptyChanges(): PodChanges {
  return { added: [], removed: [], readiness: {}, terminating: {}, templates: {} };
}

/** The topology a running lab has now: the file's pods, minus removed, plus added, with run-time readiness. */
export function applyPodChanges(t: Topology, c: PodChanges | undefined): Topology {
  if (!c) return t;
  const pods = [...t.pods.filter((p) => !c.removed.includes(p.name)), ...c.added].map((p) => ({
    ...p,
    ready: c.readiness[p.name] ?? p.ready,
    terminating: c.terminating?.[p.name] ?? p.terminating,
  }));
  return { ...t, pods };
}

/** The pods of a group: those named <group>-<number>, in number order (web-1, web-2, …, web-10). */
export function groupMembers(t: Topology, group: string): Pod[] {
  const re = new RegExp(`^${group.replace(/[^a-z0-9-]/g, '')}-(\\d+)$`);
  return t.pods
    .map((p) => ({ p, m: re.exec(p.name) }))
    .filter((x) => x.m !== null)
    .sort((a, b) => Number(a.m![1]) - Number(b.m![1]))
    .map((x) => x.p);
}

export interface ScalePlan {
  group: string;
  from: number;
  to: number;
  /** New pods, each on a node and with an address from that node's pod CIDR. */
  add: Pod[];
  /** Pods to delete: the highest-numbered first. */
  remove: Pod[];
  template: PodTemplate;
}

/**
 * Scale a group of pods to `replicas`. Pods of the topology file that an earlier scale removed
 * come back first, as the file describes them (`restorable`). New pods continue the numbering
 * (web-3, web-4…), each
 * goes to the node holding the fewest pods of the group (ties: the topology's node order, so
 * the group spreads round-robin), and gets the lowest free address of that node's pod CIDR.
 * Scaling down removes the highest-numbered pods.
 */
export function planScale(t: Topology, group: string, replicas: number, opts: { template?: PodTemplate; restorable?: Pod[] } = {}): ScalePlan {
  const known = opts.template;
  const bad = (message: string) => new LabError(message, ExitCode.badInput);
  if (!NAME_PATTERN.test(group)) throw bad(`"${group}" is not a pod group name (pods are named <group>-<number>, e.g. web for web-1)`);
  if (!Number.isInteger(replicas) || replicas < 0) throw bad(`replicas must be a whole number >= 0 (got ${replicas})`);
  if (replicas > MAX_REPLICAS) throw bad(`${replicas} replicas: the lab allows at most ${MAX_REPLICAS} per group (each pod is a namespace and a process)`);
  const members = groupMembers(t, group);
  // The lab's pod limit counts every group: a second group must not grow the lab past it.
  const total = t.pods.length - members.length + replicas;
  if (total > LIMITS.pods) throw bad(`${replicas} replicas of ${group} would make ${total} pods in lab "${t.lab}": the lab allows at most ${LIMITS.pods} in all (the other groups hold ${t.pods.length - members.length})`);
  const first = members[0];
  const template: PodTemplate | undefined = first ? { labels: { ...first.labels }, workload: first.workload } : known;
  if (!template) {
    throw bad(`no pods named ${group}-<number> in lab "${t.lab}" (pods: ${t.pods.map((p) => p.name).join(', ') || 'none'})`);
  }
  const plan: ScalePlan = { group, from: members.length, to: replicas, add: [], remove: [], template };
  if (replicas < members.length) {
    plan.remove = members.slice(replicas).reverse();
    return plan;
  }

  const taken = new Set<string>([...t.routers.map((r) => r.name), ...t.nodes.map((n) => n.name), ...t.clients.map((c) => c.name), ...t.pods.map((p) => p.name)]);
  const usedAddresses = new Set(t.pods.map((p) => p.address));
  const used6 = new Set(t.pods.flatMap((p) => (p.address6 ? [p.address6] : [])));
  const perNode = new Map(t.nodes.map((n) => [n.name, members.filter((m) => m.node === n.name).length]));
  let next = members.reduce((max, m) => Math.max(max, Number(/-(\d+)$/.exec(m.name)![1])), 0) + 1;
  // Pods of the topology file that an earlier scale removed come back first, as the file has them.
  const restorable = (opts.restorable ?? []).filter((p) => !taken.has(p.name) && !usedAddresses.has(p.address) && groupMembers({ ...t, pods: [p] }, group).length === 1);
  for (let i = members.length; i < replicas; i++) {
    const back = restorable.shift();
    if (back) {
      taken.add(back.name);
      usedAddresses.add(back.address);
      perNode.set(back.node, (perNode.get(back.node) ?? 0) + 1);
      plan.add.push({ ...back });
      continue;
    }
    while (taken.has(`${group}-${next}`)) next++;
    const name = `${group}-${next++}`;
    if (name.length > 30 || podVethName(name).length > IFNAMSIZ) {
      throw bad(`pod name "${name}" is too long: its node-side interface ${podVethName(name)} would exceed ${IFNAMSIZ} characters`);
    }
    const node = t.nodes.reduce((best, n) => (perNode.get(n.name)! < perNode.get(best.name)! ? n : best), t.nodes[0]!);
    const address = allocatePodAddress(node, usedAddresses);
    if (!address) throw bad(`node ${node.name} has no free address left in its pod CIDR ${node.podCIDR}`);
    // A dual-stack node: the CNI gives the pod one address per family.
    const address6 = node.podCIDR6 ? allocatePodAddress6(node.podCIDR6, used6) : undefined;
    if (node.podCIDR6 && !address6) throw bad(`node ${node.name} has no free address left in its pod CIDR ${node.podCIDR6}`);
    taken.add(name);
    usedAddresses.add(address);
    if (address6) used6.add(address6);
    perNode.set(node.name, perNode.get(node.name)! + 1);
    plan.add.push({ name, node: node.name, address, ...(address6 ? { address6 } : {}), labels: { ...template.labels }, ready: true, terminating: false, workload: template.workload });
  }
  return plan;
}

/** The topology after a scale: removed pods gone, new ones appended. */
export function withScale(t: Topology, plan: ScalePlan): Topology {
  const gone = new Set(plan.remove.map((p) => p.name));
  return { ...t, pods: [...t.pods.filter((p) => !gone.has(p.name)), ...plan.add] };
}

/** The lowest address of the node's pod CIDR that is not the network, broadcast, cbr0's, or in use. */
export function allocatePodAddress(node: Node, used: Set<string>): string | undefined {
  const cidr = parseCidr(node.podCIDR);
  if (!cidr) return undefined;
  const bridge = bridgeAddressOf(node);
  const size = 2 ** (32 - cidr.prefix);
  for (let i = 0; i < size; i++) {
    const a = cidr.network + i;
    const text = formatIPv4(a);
    if (isNetworkOrBroadcast(cidr, a) || text === bridge || used.has(text)) continue;
    return text;
  }
  return undefined;
}

/** The lowest IPv6 address of the node's podCIDR6 after the subnet-router anycast address and the bridge's (its first host), not in use; a lab-sized search (the first 65536). */
export function allocatePodAddress6(podCIDR6: string, used: Set<string>): string | undefined {
  const cidr = parseCidr6(podCIDR6);
  if (!cidr) return undefined;
  const bridge = firstHost6(cidr);
  const size = cidr.prefix >= 112 ? 2n ** BigInt(128 - cidr.prefix) : 65536n;
  for (let i = 1n; i < size; i++) {
    const text = formatIPv6(cidr.network + i);
    if (text !== bridge && !used.has(text)) return text;
  }
  return undefined;
}

/** The changes after a scale: new pods recorded, removed ones forgotten (or listed, if from the file). */
export function recordScale(c: PodChanges, plan: ScalePlan): PodChanges {
  const out: PodChanges = structuredClone(c);
  out.templates[plan.group] = plan.template;
  for (const p of plan.add) {
    // A pod of the file coming back is simply no longer removed.
    if (out.removed.includes(p.name)) out.removed = out.removed.filter((r) => r !== p.name);
    else out.added.push(p);
  }
  for (const p of plan.remove) {
    const i = out.added.findIndex((a) => a.name === p.name);
    if (i >= 0) out.added.splice(i, 1);
    else if (!out.removed.includes(p.name)) out.removed.push(p.name);
    delete out.readiness[p.name];
    if (out.terminating) delete out.terminating[p.name];
  }
  return out;
}

export function recordReadiness(c: PodChanges, pod: string, ready: boolean, terminating = false): PodChanges {
  const out: PodChanges = structuredClone(c);
  out.readiness[pod] = ready;
  (out.terminating ??= {})[pod] = terminating;
  return out;
}

/**
 * Each service port's endpoints, as "pod ip:port" lists: what `scale` and `kill` print before and
 * after. `endpoints` are the ready ones; `terminating` those serving out a grace period (shown with
 * their EndpointSlice conditions), which kube-proxy uses only when no ready one is left;
 * `notServing` those the EndpointSlice still lists with serving=false, which no rule uses.
 */
/** One EndpointSlice entry; zone and hints only where it has them (trafficDistribution). */
export interface EndpointEntry {
  pod: string;
  node: string;
  address: string;
  conditions: EndpointConditions;
  zone?: string;
  hints?: EndpointHints;
  /** The hand-written EndpointSlice listing it (absent: one the controller writes from the pods). */
  slice?: string;
}

export interface EndpointsView {
  service: string;
  endpoints: EndpointEntry[];
  terminating: EndpointEntry[];
  notServing: EndpointEntry[];
}

export function endpointsView(t: Topology): EndpointsView[] {
  const entry = (e: Endpoint): EndpointEntry => ({ pod: e.pod, node: e.node, address: e.address, conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating }, ...(e.zone !== undefined ? { zone: e.zone } : {}), ...(e.hints ? { hints: e.hints } : {}), ...(e.slice !== undefined ? { slice: e.slice } : {}) });
  return servicePorts(t).map((sp) => ({ service: `${sp.name}/${sp.protocol}`, endpoints: sp.endpoints.map(entry), terminating: sp.terminating.map(entry), notServing: sp.notServing.map(entry) }));
}

/** Endpoint addresses added and removed, per service port. */
export function endpointsDiff(before: EndpointsView[], after: EndpointsView[]): { service: string; added: string[]; removed: string[] }[] {
  const services = [...new Set([...before, ...after].map((v) => v.service))];
  return services.map((service) => {
    const b = before.find((v) => v.service === service)?.endpoints.map((e) => e.address) ?? [];
    const a = after.find((v) => v.service === service)?.endpoints.map((e) => e.address) ?? [];
    return { service, added: a.filter((x) => !b.includes(x)), removed: b.filter((x) => !a.includes(x)) };
  });
}

/** True when an address lies in a node's pod CIDR (for checks on allocated addresses). */
export function inPodCidr(node: Node, address: string): boolean {
  const cidr = parseCidr(node.podCIDR);
  const a = parseIPv4(address);
  return cidr !== undefined && a !== undefined && cidrContains(cidr, a);
}
