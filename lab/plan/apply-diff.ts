import type { Pod, Topology } from '../topology/schema.js';
import { podPorts } from './endpoints.js';
import { outsideServiceIPs } from '../topology/relations.js';

/**
 * What `lab apply` would change on a running lab, as kube-proxy and the kubelet would see the API
 * change: Services added, changed or deleted, pods added or deleted, pod conditions. What cannot
 * change in place (the nodes, the networks, a host's address) is refused. Pure.
 */
export interface ApplyDiff {
  /** Why the change cannot be made in place (empty: it can). */
  refused: string[];
  services: { added: string[]; changed: string[]; removed: string[] };
  /** changed: conditions or labels; restarted: its workload must listen on other ports. */
  pods: { added: string[]; removed: string[]; changed: string[]; restarted: string[] };
}

const key = (s: { namespace: string; name: string }) => `${s.namespace}/${s.name}`;
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The parts of a lab that are its namespaces and links: changed only by down and up. */
const FIXED = ['cluster', 'networks', 'routers', 'nodes', 'clients', 'kubeProxy', 'podNetwork'] as const;

export function applyDiff(before: Topology, after: Topology): ApplyDiff {
  const refused: string[] = [];
  if (after.lab !== before.lab) refused.push(`the file is for lab "${after.lab}", not "${before.lab}"`);
  for (const field of FIXED) if (!same(before[field], after[field])) refused.push(`${field} changed`);
  // Every host routes them toward its router, and the router toward the nodes: set up at up.
  if (!same(outsideServiceIPs(before), outsideServiceIPs(after))) refused.push(`the load balancer and external IPs outside the lab's ranges changed (${outsideServiceIPs(after).join(', ') || 'none now'}): every host routes them, set at up`);
  const pods = podChanges(before, after, refused);
  const was = new Map(before.services.map((s) => [key(s), s]));
  const now = new Map(after.services.map((s) => [key(s), s]));
  const services = {
    added: [...now.keys()].filter((k) => !was.has(k)),
    // A Service changes with its spec, or with the EndpointSlices written for it (their endpoints and ports).
    changed: [...now.keys()].filter((k) => was.has(k) && (!same(was.get(k), now.get(k)) || !same(slicesOf(before, k), slicesOf(after, k)))),
    removed: [...was.keys()].filter((k) => !now.has(k)),
  };
  return { refused, services, pods };
}

/** The EndpointSlices that belong to a Service ("namespace/name"). */
const slicesOf = (t: Topology, service: string) => (t.endpointSlices ?? []).filter((e) => `${e.namespace}/${e.service}` === service);

function podChanges(before: Topology, after: Topology, refused: string[]): ApplyDiff['pods'] {
  const was = new Map(before.pods.map((p) => [p.name, p]));
  const now = new Map(after.pods.map((p) => [p.name, p]));
  const changed: string[] = [];
  const restarted: string[] = [];
  for (const [name, p] of now) {
    const old = was.get(name);
    if (!old) continue;
    const moved = (['node', 'address', 'workload'] as const).filter((f) => old[f] !== p[f]);
    if (moved.length > 0) refused.push(`pod ${name}: ${moved.join(', ')} changed`);
    else {
      if (!same(conditions(old), conditions(p))) changed.push(name);
      // The workload opens its sockets when it starts: listening on other ports (or answering UDP on others) is a restart.
      if (!same(podPorts(before, old), podPorts(after, p)) || !same(podPorts(before, old, 'UDP'), podPorts(after, p, 'UDP'))) restarted.push(name);
    }
  }
  return { added: [...now.keys()].filter((n) => !was.has(n)), removed: [...was.keys()].filter((n) => !now.has(n)), changed, restarted };
}

const conditions = (p: Pod) => [p.ready, p.terminating, p.labels];

/** True when nothing would change. */
export const isEmptyDiff = (d: ApplyDiff) => Object.values(d.services).every((l) => l.length === 0) && Object.values(d.pods).every((l) => l.length === 0);
