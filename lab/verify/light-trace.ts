import type { ConntrackEntry } from '../kernel/conntrack.js';
import { readNftText, readRuleCounters } from '../kernel/readers.js';
import type { ParsedRule } from '../plan/kube-proxy/rules.js';
import type { Topology } from '../topology/schema.js';
import { isDualStack } from '../topology/family.js';
import { joinHostPort } from '../util/ipv6.js';
import type { Flow } from './flows.js';
import { iptablesTranslation, nftTranslation, type Translation } from './nat-rules.js';
import { flowsOfPaths } from './paths.js';
import type { Walkthrough } from './walkthrough.js';

/**
 * What verify reads for the player on every run: each node's rules with counters before the
 * traffic (iptables mode), then, for each path's connection, its translating node's rules after
 * it, walked to the rules that rewrote it (see nat-rules.ts). One rule read per node each time.
 */

/** Per node, its rules; a dual-stack node's IPv6 ones (ip6tables) under rulesKey(node, true). */
export type RulesBefore = Record<string, ParsedRule[]>;

/** Where a node's rules of one family are kept: its name (IPv4), or "<name> ipv6". */
export const rulesKey = (node: string, ipv6: boolean) => (ipv6 ? `${node} ipv6` : node);

export async function readRulesBefore(t: Topology, ns: (host: string) => string): Promise<RulesBefore> {
  if (t.kubeProxy.mode === 'nftables') return {};
  const families = isDualStack(t) ? [false, true] : [false];
  return Object.fromEntries(await Promise.all(t.nodes.flatMap((n) => families.map(async (v6) => [rulesKey(n.name, v6), await readRuleCounters(ns(n.name), v6)] as const))));
}

/** Per path flow (keyed by its client ip:port), the rules that translated it. */
export async function readTranslations(t: Topology, w: Walkthrough, flows: Flow[], conntrack: Record<string, ConntrackEntry[]>, ns: (host: string) => string, before: RulesBefore): Promise<Record<string, Translation>> {
  // An IPv6 connection was translated by the node's IPv6 rules (ip6tables, table ip6 kube-proxy).
  const located = flowsOfPaths(w, flows).flatMap(({ flow }) => (flow?.conntrack ? [{ flow, ...flow.conntrack, v6: flow.conntrack.entry.original.src.includes(':') }] : []));
  const keys = [...new Map(located.map((l) => [rulesKey(l.node, l.v6), l])).values()];
  const nft = t.kubeProxy.mode === 'nftables';
  const read = async ({ node: n, v6 }: { node: string; v6: boolean }) => [rulesKey(n, v6), nft ? await readNftText(ns(n), { ipv6: v6 }) : await readRuleCounters(ns(n), v6)] as const;
  const rules = new Map<string, string | ParsedRule[]>(await Promise.all(keys.map(read)));
  const local = (n: string, v6: boolean) => t.nodes.filter((x) => x.name === n).map((x) => (v6 ? (x.address6 ?? '') : x.address));
  const out: Record<string, Translation> = {};
  for (const { flow, node, entry, v6 } of located) {
    const r = rules.get(rulesKey(node, v6))!;
    const to = (e: ConntrackEntry) => joinHostPort(e.reply.src, e.reply.sport);
    out[flow.client] = typeof r === 'string' ? nftTranslation(node, entry, r, (conntrack[node] ?? []).filter((e) => to(e) === to(entry)).length) : iptablesTranslation(node, entry, local(node, v6), r, before[rulesKey(node, v6)]);
  }
  return out;
}
