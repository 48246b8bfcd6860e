import type { ConntrackEntry } from '../kernel/conntrack.js';
import { readNftText, readRuleCounters } from '../kernel/readers.js';
import type { ParsedRule } from '../plan/kube-proxy/rules.js';
import type { Topology } from '../topology/schema.js';
import type { Flow } from './flows.js';
import { iptablesTranslation, nftTranslation, type Translation } from './nat-rules.js';
import { flowsOfPaths } from './paths.js';
import type { Walkthrough } from './walkthrough.js';

/**
 * What verify reads for the player on every run: each node's rules with counters before the
 * traffic (iptables mode), then, for each path's connection, its translating node's rules after
 * it, walked to the rules that rewrote it (see nat-rules.ts). One rule read per node each time.
 */

export type RulesBefore = Record<string, ParsedRule[]>;

export async function readRulesBefore(t: Topology, ns: (host: string) => string): Promise<RulesBefore> {
  if (t.kubeProxy.mode === 'nftables') return {};
  return Object.fromEntries(await Promise.all(t.nodes.map(async (n) => [n.name, await readRuleCounters(ns(n.name))] as const)));
}

/** Per path flow (keyed by its client ip:port), the rules that translated it. */
export async function readTranslations(t: Topology, w: Walkthrough, flows: Flow[], conntrack: Record<string, ConntrackEntry[]>, ns: (host: string) => string, before: RulesBefore): Promise<Record<string, Translation>> {
  const located = flowsOfPaths(w, flows).flatMap(({ flow }) => (flow?.conntrack ? [{ flow, ...flow.conntrack }] : []));
  const nodes = [...new Set(located.map((l) => l.node))];
  const nft = t.kubeProxy.mode === 'nftables';
  const read = async (n: string) => [n, nft ? await readNftText(ns(n)) : await readRuleCounters(ns(n))] as const;
  const rules = new Map<string, string | ParsedRule[]>(await Promise.all(nodes.map(read)));
  const local = (n: string) => t.nodes.filter((x) => x.name === n).map((x) => x.address);
  const out: Record<string, Translation> = {};
  for (const { flow, node, entry } of located) {
    const r = rules.get(node)!;
    const to = (e: ConntrackEntry) => `${e.reply.src}:${e.reply.sport}`;
    out[flow.client] = typeof r === 'string' ? nftTranslation(node, entry, r, (conntrack[node] ?? []).filter((e) => to(e) === to(entry)).length) : iptablesTranslation(node, entry, local(node), r, before[node]);
  }
  return out;
}
