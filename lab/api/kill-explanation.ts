import { servicePorts, trafficPolicies } from '../plan/endpoints.js';
import type { Pod, ProxyMode, Topology } from '../topology/schema.js';

/** UDP conntrack entries deleted on one node by kube-proxy's reconciler: replies from `endpoint`, no serving one of `frontend`. */
export interface UdpFlush {
  node: string;
  /** The reply source ("ip:port") that is no serving endpoint of the frontend. */
  endpoint: string;
  /** "serviceIP:port", or "*:nodePort" (any destination address with that port). */
  frontend: string;
  entries: number;
}

/** TCP states of a connection that is over: conntrack keeps the entry a while so late packets still match. */
const CLOSED_STATES = new Set(['TIME_WAIT', 'CLOSE']);

/** "2 ESTABLISHED, 1 TIME_WAIT": conntrack entries counted by state (UDP entries have none). */
export function conntrackStates(states: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const s of states) counts.set(s || 'UDP', (counts.get(s || 'UDP') ?? 0) + 1);
  return [...counts].map(([state, n]) => `${n} ${state}`).join(', ');
}

/** The sentence on what conntrack keeps for the pod, worded by the states of its entries. */
function existingSentence(pod: Pod, addr: string, states: readonly string[]): string {
  const rule = "rules decide only a connection's first packet (conntrack state NEW), and conntrack applies the translation it recorded to every later packet";
  if (states.length === 0) return `Existing connections: conntrack holds no entry translated to ${pod.name}, so no connection keeps its old translation (${rule}).`;
  const open = states.filter((s) => !CLOSED_STATES.has(s));
  const closed = states.length - open.length;
  const parts: string[] = [];
  if (open.length > 0) parts.push(`the ${open.length} open ${open.length === 1 ? 'one' : 'ones'} (${conntrackStates(open)}) keep their DNAT to ${addr} until the connection ends or the entry expires (ESTABLISHED up to 5 days); kube-proxy flushes such entries for UDP only`);
  if (closed > 0) parts.push(`the ${closed} TIME_WAIT/CLOSE ${closed === 1 ? 'entry is a connection' : 'entries are connections'} already closed, kept about 120 s so a late packet still finds its translation; no traffic flows there`);
  return `Existing connections: ${rule}. Of the ${states.length} conntrack ${states.length === 1 ? 'entry' : 'entries'} translated to ${pod.name}, ${parts.join('; ')}.`;
}

/** What `lab kill` teaches: why new connections avoid the pod while existing ones keep their translation. */
export function killExplanation(pod: Pod, ports: number[], existingStates: readonly string[], udpFlushed: UdpFlush[], keepRunning: boolean, mode: ProxyMode = 'iptables'): string[] {
  const addr = `${pod.address}:${ports.join(',')}`;
  const flushed = udpFlushed.reduce((n, f) => n + f.entries, 0);
  return [
    `New connections: every node's ${mode === 'nftables' ? 'service- (and local-) chains no longer pick' : 'KUBE-SVC (and KUBE-SVL) chains no longer list'} ${addr}, so from now on no new connection is translated to ${pod.name}.`,
    existingSentence(pod, addr, existingStates),
    ...(flushed > 0 ? [`UDP: as kube-proxy's conntrack reconciler does after every sync (v1.32+), the lab deleted the ${flushed} UDP conntrack ${flushed === 1 ? 'entry' : 'entries'} to a Service whose reply came from no serving endpoint (${pod.name} is none now), so the next datagram of those flows is balanced anew.`] : []),
    keepRunning
      ? `The workload still runs (a failed readiness probe): established connections keep being served by ${pod.name}.`
      : `The workload was stopped: ${pod.name}'s sockets and connections were closed, and a late packet of an old connection still goes to ${pod.address}, which now answers with a reset.`,
  ];
}

/**
 * What `lab kill --terminating` teaches: the pod serves out its grace period, and whether new
 * connections still reach it depends, per traffic policy and node, on whether a ready endpoint is left.
 */
export function terminatingExplanation(after: Topology, pod: Pod): string[] {
  const lines = [
    `${pod.name} is terminating: its workload keeps running, and its EndpointSlice entry reads ready=false, serving=${pod.ready}, terminating=true.`,
  ];
  for (const sp of servicePorts(after)) {
    const mine = sp.terminating.find((e) => e.pod === pod.name);
    if (!mine) continue;
    const { usesCluster, usesLocal, externalLocal, internalLocal } = trafficPolicies(sp.service);
    const where: string[] = [];
    if (usesCluster) {
      where.push(
        sp.endpoints.length > 0
          ? `Cluster policy: ${sp.endpoints.length} ready ${sp.endpoints.length === 1 ? 'endpoint is' : 'endpoints are'} left, so no node sends a new connection to ${mine.address}`
          : `Cluster policy: no ready endpoint is left anywhere, so every node falls back to the serving-terminating ones and new connections do reach ${mine.address}`,
      );
    }
    if (usesLocal) {
      const which = externalLocal && internalLocal ? 'external and internal' : externalLocal ? 'external' : 'internal';
      const readyHere = sp.endpoints.filter((e) => e.node === mine.node).length;
      where.push(
        readyHere > 0
          ? `Local policy (${which} traffic) on ${mine.node}: a ready local endpoint is left, so ${mine.address} gets no new connection there`
          : `Local policy (${which} traffic) on ${mine.node}: no ready local endpoint is left, so ${mine.node} falls back to ${mine.address}`,
      );
    }
    lines.push(`${sp.name}: ${where.join('; ')}.`);
  }
  lines.push(`Existing connections keep their conntrack translation and are served to the end; ${pod.name} stays until lab revive (a real pod leaves when its grace period ends).`);
  return lines;
}
