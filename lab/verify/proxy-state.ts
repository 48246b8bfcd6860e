import { parseConntrack } from '../kernel/conntrack.js';
import { run } from '../kernel/exec.js';
import { nftTable } from '../kernel/rules.js';
import { parseSave } from '../plan/kube-proxy/rules.js';

/**
 * What the verify checks read of kube-proxy's live rules on a node, in either proxy mode.
 * iptables mode has per-rule packet counters; nftables mode has none (kube-proxy writes no
 * `counter` statements), so there the checks read the ruleset itself: which endpoint chain
 * DNATs where, which map element holds which verdict, which affinity set holds which client.
 */

export interface RuleCounter {
  packets: number;
  comment?: string;
}

/** iptables: packet counters of every rule, keyed "table chain jump" (the first such rule's comment kept). */
export async function ruleCounters(ns: string): Promise<Map<string, RuleCounter>> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, 'iptables-save', '-c'], { allowFailure: true });
  const out = new Map<string, RuleCounter>();
  for (const r of parseSave(stdout).rules) {
    const key = `${r.table} ${r.chain} ${r.options.get('-j') ?? ''}`;
    const prior = out.get(key);
    out.set(key, { packets: (prior?.packets ?? 0) + (r.counters?.packets ?? 0), comment: prior?.comment ?? r.options.get('--comment') });
  }
  return out;
}

/** iptables: packet counters of every KUBE-SEP DNAT rule, keyed by the endpoint it translates to. */
export async function dnatCounters(ns: string): Promise<Map<string, number>> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, 'iptables-save', '-c', '-t', 'nat'], { allowFailure: true });
  const out = new Map<string, number>();
  for (const r of parseSave(stdout).rules) {
    const to = r.options.get('--to-destination');
    if (r.chain.startsWith('KUBE-SEP-') && to) out.set(to, (out.get(to) ?? 0) + (r.counters?.packets ?? 0));
  }
  return out;
}

/** sessionAffinity's memory on a node: per endpoint, the list or set and the client addresses it holds. */
export interface AffinityMemory {
  /** The KUBE-SEP chain (its xt_recent list), or the nftables affinity set. */
  name: string;
  endpoint: string;
  sources: string[];
}

/** iptables: each KUBE-SEP chain with a "recent --set" rule and its /proc/net/xt_recent/<chain> list. */
export async function recentLists(ns: string): Promise<AffinityMemory[]> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, 'iptables-save', '-t', 'nat'], { allowFailure: true });
  const seps = parseSave(stdout).rules.filter((r) => r.chain.startsWith('KUBE-SEP-') && r.modules.includes('recent') && r.options.get('--to-destination'));
  return Promise.all(
    seps.map(async (r) => {
      const { stdout: list } = await run('ip', ['netns', 'exec', ns, 'cat', `/proc/net/xt_recent/${r.chain}`], { allowFailure: true });
      const sources = [...list.matchAll(/src=(\S+)/g)].map((m) => m[1]!);
      return { name: r.chain, endpoint: r.options.get('--to-destination')!, sources };
    }),
  );
}

/** "affinity-HASH-ns/svc/tcp/port__10.244.0.3/8443" → "10.244.0.3:8443". */
const endpointOfName = (name: string) => name.slice(name.lastIndexOf('__') + 2).replace('/', ':');

/** A set element's value: a plain value, or {elem: {val, timeout, expires, comment}}. */
function elementValue(e: unknown): { val: unknown; comment?: string } {
  if (e && typeof e === 'object' && 'elem' in e) {
    const inner = (e as { elem: { val: unknown; comment?: string } }).elem;
    return { val: inner.val, comment: inner.comment };
  }
  return { val: e };
}

/** nftables: each affinity-… set (dynamic, with timeouts) and the client addresses it holds. */
export async function affinitySets(ns: string): Promise<AffinityMemory[]> {
  const objects = await nftTable(ns);
  return objects.flatMap((o) =>
    o.set && o.set.name.startsWith('affinity-')
      ? [{ name: o.set.name, endpoint: endpointOfName(o.set.name), sources: (o.set.elem ?? []).map((e) => String(elementValue(e).val)) }]
      : [],
  );
}

export interface NftMapElement {
  map: string;
  key: string;
  verdict: string;
  comment?: string;
}

const keyText = (val: unknown): string =>
  val && typeof val === 'object' && 'concat' in val ? (val as { concat: unknown[] }).concat.map(String).join(' . ') : String(val);
const verdictText = (v: unknown): string => {
  if (!v || typeof v !== 'object') return String(v);
  const [kind, arg] = Object.entries(v)[0] ?? ['', null];
  return arg && typeof arg === 'object' && 'target' in arg ? `${kind} ${(arg as { target: string }).target}` : kind;
};

/** nftables: every element of kube-proxy's verdict maps: "172.31.0.5 . tcp . 443" → "goto service-…". */
export async function nftMapElements(ns: string): Promise<NftMapElement[]> {
  const objects = await nftTable(ns);
  return objects.flatMap((o) =>
    o.map
      ? (o.map.elem ?? []).map((pair) => {
          const [k, v] = pair as [unknown, unknown];
          const { val, comment } = elementValue(k);
          return { map: o.map!.name, key: keyText(val), verdict: verdictText(v), comment };
        })
      : [],
  );
}

/** nftables: the endpoint chains' DNAT targets on a node: "10.244.1.2:8443" → ["endpoint-…/tcp/…", "endpoint-…/udp/…"]. */
export async function nftDnatChains(ns: string): Promise<Map<string, string[]>> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'ip', 'kube-proxy'], { allowFailure: true });
  const out = new Map<string, string[]>();
  let chain = '';
  for (const line of stdout.split('\n')) {
    const c = /^\s*chain (\S+) \{/.exec(line);
    if (c) chain = c[1]!;
    const d = /dnat to (\S+)/.exec(line);
    if (d && chain.startsWith('endpoint-')) out.set(d[1]!, [...(out.get(d[1]!) ?? []), chain]);
  }
  return out;
}

/**
 * nftables mode's stand-in for DNAT counters: every connection (any protocol) the node's
 * conntrack holds translated to an endpoint, keyed by endpoint, as "proto orig-tuple" strings,
 * so a check can count the ones that appeared during a run.
 */
export async function translatedConnections(ns: string): Promise<Map<string, Set<string>>> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, 'conntrack', '-L'], { allowFailure: true });
  const out = new Map<string, Set<string>>();
  for (const e of parseConntrack(stdout)) {
    if (e.original.dst === e.reply.src && e.original.dport === e.reply.sport) continue; // not DNATed
    const endpoint = `${e.reply.src}:${e.reply.sport}`;
    const set = out.get(endpoint) ?? new Set<string>();
    set.add(`${e.protocol} ${e.original.src}:${e.original.sport} > ${e.original.dst}:${e.original.dport}`);
    out.set(endpoint, set);
  }
  return out;
}
