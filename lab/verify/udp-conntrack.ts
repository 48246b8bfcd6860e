import type { ConntrackEntry } from '../kernel/conntrack.js';
import { readConntrack, translatedConnectionsOf } from '../kernel/readers.js';

/**
 * A UDP exchange's conntrack entry lives 30 s (nf_conntrack_udp_timeout) after its last
 * datagram: on a long run (or a group whose dropped requests each wait out their timeout), the
 * first exchanges' entries are gone by the time verify reads every node's table after the
 * traffic. Each UDP exchange's entry is kept as found right after it, and what the final read no
 * longer holds is put back from those. Pure.
 */
export type Tables = Record<string, ConntrackEntry[]>;

const key = (e: ConntrackEntry) => `${e.protocol} ${e.original.src}:${e.original.sport} ${e.original.dst}:${e.original.dport} ${e.reply.src}:${e.reply.sport} ${e.reply.dst}:${e.reply.dport}`;

/** The final tables, with every entry a kept table held and they no longer do. */
export function withKept(final: Tables, kept: Tables[]): Tables {
  const out: Tables = {};
  for (const node of Object.keys(final)) {
    const seen = new Set(final[node]!.map(key));
    const extra = kept.flatMap((k) => k[node] ?? []).filter((e) => !seen.has(key(e)) && (seen.add(key(e)), true));
    out[node] = [...final[node]!, ...extra];
  }
  return out;
}

/** nftables mode's translated connections after the traffic, with the kept UDP ones put back. */
export function translatedWithKept(final: Record<string, Record<string, string[]>>, kept: Tables[]): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  for (const [node, byEndpoint] of Object.entries(final)) {
    const merged: Record<string, Set<string>> = {};
    for (const [ep, conns] of Object.entries(byEndpoint)) merged[ep] = new Set(conns);
    for (const k of kept) for (const [ep, conns] of Object.entries(translatedConnectionsOf(k[node] ?? []))) for (const c of conns) (merged[ep] ??= new Set()).add(c);
    out[node] = Object.fromEntries(Object.entries(merged).map(([ep, s]) => [ep, [...s]]));
  }
  return out;
}

/** A node's conntrack table as verify reads it: TCP, and UDP too when the walkthrough sends UDP (then the captures take every datagram as well). */
export async function conntrackOf(ns: string, udp: boolean): Promise<ConntrackEntry[]> {
  return udp ? (await Promise.all([readConntrack(ns), readConntrack(ns, 'udp')])).flat() : readConntrack(ns);
}
