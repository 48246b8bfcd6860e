import { runIn } from '../kernel/exec.js';
import { readRouteSource } from '../kernel/readers.js';
import { birdProtocolName } from '../plan/bird.js';
import { podNetworkOf } from '../plan/pod-network/index.js';
import { namespaceName } from '../topology/names.js';
import type { Topology } from '../topology/schema.js';

/**
 * `lab workshop --check`'s look at the pod network, in the lab's own mode: for every pair of
 * nodes, what carries the one's pods' traffic to the other's as the mode plans it (routed, bgp:
 * the router's route to the pod CIDR via the node, learned by BIRD in bgp; host-gw: the node's
 * own route via its peer; vxlan: the peer VTEP's neighbour and FDB entries), and the mode's
 * daemons running with their BGP sessions Established. Reads only.
 */

/** A pod-network daemon as lab status reads it (lab/api/pod-network-daemons.ts): running, and its BGP sessions. */
export interface DaemonLook {
  host: string;
  name: string;
  running: boolean;
  sessions: { peer: string; state: string; info: string }[];
}

export interface PodNetworkFinding {
  ok: boolean;
  detail: string;
}

/** The first address of a CIDR: "10.244.1.0/24" → "10.244.1.1" (a pod address `ip route` can be asked about). Pure. */
export function firstHost(cidr: string): string {
  const [ip] = cidr.split('/');
  const o = ip!.split('.').map(Number);
  o[3] = (o[3] ?? 0) + 1;
  return o.join('.');
}

/** What the mode plans between each pair of nodes, as things to look for. Pure. */
export type PodNetworkExpectation =
  | { kind: 'router-route'; from: string; to: string; cidr: string; via: string; proto?: string }
  | { kind: 'node-route'; node: string; to: string; cidr: string; via: string }
  | { kind: 'vtep'; node: string; to: string; device: string; address: string; mac: string; underlay: string };

export function podNetworkExpectations(t: Topology): PodNetworkExpectation[] {
  const net = podNetworkOf(t);
  const plan = net.plan(t);
  const out: PodNetworkExpectation[] = [];
  for (const a of t.nodes) {
    for (const b of t.nodes) {
      if (a.name === b.name) continue;
      const hop = net.crossNodeHop(t, a, b);
      const vtep = hop.tunnel?.vteps.find((v) => v.node === b.name);
      if (vtep) out.push({ kind: 'vtep', node: a.name, to: b.name, device: vtep.device, address: vtep.address, mac: vtep.mac, underlay: vtep.underlay });
      else if (hop.viaRouter) out.push({ kind: 'router-route', from: a.name, to: b.name, cidr: b.podCIDR, via: b.address, ...(plan.daemons.length ? { proto: 'bird' } : {}) });
      else out.push({ kind: 'node-route', node: a.name, to: b.name, cidr: b.podCIDR, via: b.address });
    }
  }
  // One router route per destination node is enough: every sender uses the same router.
  return out.filter((e, i) => e.kind !== 'router-route' || out.findIndex((x) => x.kind === 'router-route' && x.to === e.to) === i);
}

async function jsonOf<T>(ns: string, cmd: string, args: string[]): Promise<T[]> {
  const { stdout } = await runIn(ns, cmd, args, { allowFailure: true });
  try {
    return JSON.parse(stdout || '[]') as T[];
  } catch {
    return [];
  }
}

async function findingOf(lab: string, t: Topology, e: PodNetworkExpectation): Promise<string | undefined> {
  if (e.kind === 'vtep') {
    const ns = namespaceName(lab, e.node);
    const [neigh, fdb] = await Promise.all([
      jsonOf<{ dst: string; lladdr?: string }>(ns, 'ip', ['-j', 'neigh', 'show', 'dev', e.device]),
      jsonOf<{ mac: string; dst?: string }>(ns, 'bridge', ['-j', 'fdb', 'show', 'dev', e.device]),
    ]);
    if (!neigh.some((n) => n.dst === e.address && n.lladdr === e.mac)) return `${e.node} has no neighbour ${e.address} lladdr ${e.mac} on ${e.device} (${e.to}'s VTEP)`;
    if (!fdb.some((f) => f.mac === e.mac && f.dst === e.underlay)) return `${e.node}'s FDB on ${e.device} does not send ${e.mac} to ${e.underlay} (${e.to})`;
    return undefined;
  }
  if (e.kind === 'node-route') {
    const r = await readRouteSource(namespaceName(lab, e.node), firstHost(e.cidr));
    return r?.via === e.via ? undefined : `${e.node} routes ${e.cidr} ${r ? `via ${r.via || 'no next hop'} (${r.dst})` : 'nowhere'}, not via ${e.via} (${e.to})`;
  }
  const routes = await Promise.all(t.routers.map(async (r) => ({ router: r.name, route: await readRouteSource(namespaceName(lab, r.name), firstHost(e.cidr)) })));
  const good = routes.find((x) => x.route?.via === e.via && x.route.dst === e.cidr && (!e.proto || x.route.proto === e.proto));
  if (good) return undefined;
  const seen = routes.map((x) => `${x.router}: ${x.route ? `${x.route.dst} via ${x.route.via || '-'} proto ${x.route.proto}` : 'none'}`).join('; ');
  return `no router routes ${e.cidr} via ${e.via}${e.proto ? ` proto ${e.proto}` : ''} (${e.to}'s pods; ${seen})`;
}

export async function podNetworkHealth(lab: string, t: Topology, daemons: DaemonLook[]): Promise<PodNetworkFinding> {
  const plan = podNetworkOf(t).plan(t);
  const expectations = podNetworkExpectations(t);
  const problems: string[] = [];
  for (const d of plan.daemons) {
    const live = daemons.find((x) => x.host === d.host && x.name === d.name);
    if (!live?.running) {
      problems.push(`${d.name} on ${d.host} is not running`);
      continue;
    }
    for (const p of d.ready.established) {
      const s = live.sessions.find((x) => birdProtocolName(x.peer) === p);
      if (!s) problems.push(`${d.name} on ${d.host} has no BGP session ${p}`);
      else if (!/Established/.test(s.info)) problems.push(`${d.name} on ${d.host}: the session with ${s.peer} is ${s.info || s.state}, not Established`);
    }
  }
  for (const f of await Promise.all(expectations.map((e) => findingOf(lab, t, e)))) if (f) problems.push(f);
  const what = `${expectations.length} node-to-node path${expectations.length === 1 ? '' : 's'}${plan.daemons.length ? `, ${plan.daemons.length} daemons` : ''}`;
  return problems.length ? { ok: false, detail: `${problems.length} problem${problems.length === 1 ? '' : 's'}, first: ${problems[0]}` } : { ok: true, detail: `${what} as planned` };
}
