import type { ConntrackEntry } from '../kernel/conntrack.js';
import { joinHostPort } from '../util/ipv6.js';
import type { Flow } from './flows.js';
import { ANY_ENDPOINT, type Traffic, type Walkthrough, type WalkthroughPath } from './walkthrough.js';

/**
 * Which request belongs to which documented path: pure functions shared by gathering (which
 * traffic to send, when to stop) and judging (which flow a path's steps are checked against).
 */

export const trafficKey = (t: Traffic) => JSON.stringify(t);

export interface TrafficGroup {
  key: string;
  traffic: Traffic;
  paths: WalkthroughPath[];
}

/** Paths grouped by the traffic they need: each group is sent once. */
export function trafficGroups(w: Walkthrough): TrafficGroup[] {
  const groups = new Map<string, TrafficGroup>();
  for (const p of w.paths) {
    const traffic = p.traffic ?? w.traffic;
    const key = trafficKey(traffic);
    const g = groups.get(key) ?? { key, traffic, paths: [] };
    g.paths.push(p);
    groups.set(key, g);
  }
  return [...groups.values()];
}

/** The flow a path describes: its outcome or answering pod, and the node that translated it (via). */
export function flowFitsPath(f: Flow, p: WalkthroughPath): boolean {
  const outcome = p.outcome === 'no-answer' ? !f.answer : p.endpoint === ANY_ENDPOINT ? Boolean(f.answer) : f.answer?.pod === p.endpoint;
  return outcome && (!p.via || f.conntrack?.node === p.via);
}

/** Enough requests of this group sent: the minimum, and one flow for every path. */
export function groupSatisfied(g: TrafficGroup, flows: Flow[]): boolean {
  return flows.length >= g.traffic.requests && g.paths.every((p) => flows.some((f) => flowFitsPath(f, p)));
}

/** Each path with its group's flows and the one flow it is judged on (undefined: none was seen). */
export function flowsOfPaths(w: Walkthrough, flows: Flow[]): { path: WalkthroughPath; groupFlows: Flow[]; flow?: Flow }[] {
  return trafficGroups(w).flatMap((g) => {
    const groupFlows = flows.filter((f) => f.group === g.key);
    return g.paths.map((path) => ({ path, groupFlows, flow: groupFlows.find((f) => flowFitsPath(f, path)) }));
  });
}

/** Find the node whose conntrack table holds a flow, by its original tuple. */
export function locateFlow(flow: Flow, tables: Record<string, ConntrackEntry[]>): void {
  for (const [node, entries] of Object.entries(tables)) {
    const entry = entries.find((e) => joinHostPort(e.original.src, e.original.sport) === flow.client && joinHostPort(e.original.dst, e.original.dport) === flow.target);
    if (entry) {
      flow.conntrack = { node, entry };
      return;
    }
  }
}
