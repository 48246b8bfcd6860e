import { parseSave, type ParsedRule } from '../plan/kube-proxy/rules.js';
import { parseConntrack, type ConntrackEntry } from './conntrack.js';
import { run, runIn } from './exec.js';
import { joinHostPort } from '../util/ipv6.js';

/**
 * What the lab reads from a namespace's kernel: rules and their counters, conntrack with its
 * timers, routes, sessionAffinity's recent lists. Verify, the workshop and the inspect verbs
 * all read through here; each reader runs one command and parses it with a pure function.
 */

/** The connection-tracking table of one lab namespace, for one protocol (TCP unless said). */
export async function readConntrack(ns: string, proto: 'tcp' | 'udp' = 'tcp'): Promise<ConntrackEntry[]> {
  const { stdout } = await runIn(ns, 'conntrack', ['-L', '-p', proto], { allowFailure: true });
  return parseConntrack(stdout);
}

/** iptables-save of one table (or all), optionally with counters. */
export async function readRules(ns: string, opts: { table?: string; counters?: boolean; allowFailure?: boolean; ipv6?: boolean } = {}): Promise<string> {
  const args = [...(opts.counters ? ['-c'] : []), ...(opts.table ? ['-t', opts.table] : [])];
  const { stdout } = await runIn(ns, opts.ipv6 ? 'ip6tables-save' : 'iptables-save', args, { allowFailure: opts.allowFailure ?? true });
  return stdout;
}

export interface RuleCounter {
  packets: number;
  comment?: string;
}

/** Packet counters of every rule, keyed "table chain jump" (summed; the first such rule's comment kept). Pure. */
export function countersByJump(rules: ParsedRule[]): Record<string, RuleCounter> {
  const out: Record<string, RuleCounter> = {};
  for (const r of rules) {
    const key = `${r.table} ${r.chain} ${r.options.get('-j') ?? ''}`;
    const prior = out[key];
    out[key] = { packets: (prior?.packets ?? 0) + (r.counters?.packets ?? 0), comment: prior?.comment ?? r.options.get('--comment') };
  }
  return out;
}

/** Packet counters of every KUBE-SEP DNAT rule, keyed by the endpoint it translates to. Pure. */
export function dnatCountersOf(rules: ParsedRule[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rules) {
    const to = r.options.get('--to-destination');
    if (r.table === 'nat' && r.chain.startsWith('KUBE-SEP-') && to) out[to] = (out[to] ?? 0) + (r.counters?.packets ?? 0);
  }
  return out;
}

/** Every rule of a namespace with its packet counters. */
export async function readRuleCounters(ns: string, ipv6 = false): Promise<ParsedRule[]> {
  return parseSave(await readRules(ns, { counters: true, ipv6 })).rules;
}

/** The route a namespace uses toward an address: its device and gateway (undefined: no route). */
export async function readRoute(ns: string, to: string): Promise<{ dev?: string; gateway?: string } | undefined> {
  const { stdout } = await runIn(ns, 'ip', ['-j', 'route', 'get', to], { allowFailure: true });
  try {
    return (JSON.parse(stdout) as { dev?: string; gateway?: string }[])[0];
  } catch {
    return undefined;
  }
}

/** Where the route a namespace uses toward an address came from: the most specific route holding it, its gateway and protocol (bird, kernel, static, boot). */
export async function readRouteSource(ns: string, to: string): Promise<{ dst: string; via: string; proto: string } | undefined> {
  const v6 = to.includes(':');
  const { stdout } = await run('ip', ['-n', ns, v6 ? '-6' : '-4', '-j', 'route', 'show', 'match', to], { allowFailure: true });
  try {
    const prefixOf = (dst: string) => (dst === 'default' ? 0 : Number(dst.split('/')[1] ?? (v6 ? 128 : 32)));
    const routes = (JSON.parse(stdout || '[]') as { dst: string; gateway?: string; protocol?: string }[]).sort((a, b) => prefixOf(b.dst) - prefixOf(a.dst));
    const r = routes[0];
    return r && { dst: r.dst, via: r.gateway ?? '', proto: r.protocol ?? 'boot' };
  } catch {
    return undefined;
  }
}

/** The Ethernet addresses of a namespace's interfaces (loopback's zeros left out): whose a captured frame was addressed to. */
export async function readMacs(ns: string): Promise<string[]> {
  const { stdout } = await run('ip', ['-n', ns, '-j', 'link', 'show'], { allowFailure: true });
  try {
    return (JSON.parse(stdout || '[]') as { address?: string; link_type?: string }[]).filter((l) => l.link_type === 'ether' && l.address).map((l) => l.address!);
  } catch {
    return [];
  }
}

/** The next hops of a namespace's route to exactly `to` (one gateway, or each of a multipath route's). */
export async function readNextHops(ns: string, to: string): Promise<string[]> {
  const { stdout } = await run('ip', ['-n', ns, '-j', 'route', 'show', to], { allowFailure: true });
  try {
    const r = (JSON.parse(stdout || '[]') as { gateway?: string; nexthops?: { gateway?: string }[] }[])[0];
    return (r?.nexthops?.map((h) => h.gateway ?? '') ?? (r?.gateway ? [r.gateway] : [])).filter(Boolean);
  } catch {
    return [];
  }
}

export interface RecentList {
  /** The KUBE-SEP chain whose "recent --set" rule fills this list. */
  chain: string;
  /** The endpoint that chain DNATs to. */
  endpoint: string;
  sources: string[];
}

/** The KUBE-SEP rules that fill an xt_recent list ("recent --set") and DNAT: one per list. Pure. */
export const recentListRules = (nat: ParsedRule[]) => nat.filter((r) => r.chain.startsWith('KUBE-SEP-') && r.modules.includes('recent') && r.options.get('--to-destination'));

/**
 * sessionAffinity's memory on a node: each KUBE-SEP chain with a "recent --set" rule, the
 * endpoint it DNATs to, and the source addresses its list (/proc/net/xt_recent/<chain>) holds.
 */
export async function readRecentLists(ns: string): Promise<RecentList[]> {
  const seps = recentListRules(parseSave(await readRules(ns, { table: 'nat' })).rules);
  return Promise.all(
    seps.map(async (r) => {
      const { stdout } = await runIn(ns, 'cat', [`/proc/net/xt_recent/${r.chain}`], { allowFailure: true });
      return { chain: r.chain, endpoint: r.options.get('--to-destination')!, sources: [...stdout.matchAll(/src=(\S+)/g)].map((m) => m[1]!) };
    }),
  );
}

const CONNTRACK_STATES = ['established', 'time_wait', 'close', 'close_wait', 'fin_wait', 'last_ack', 'syn_sent', 'syn_recv'];
/** The kernel's defaults, used if the namespace's own values cannot be read. */
export const DEFAULT_TCP_TIMEOUTS: Record<string, number> = { established: 432000, time_wait: 120, close: 10, close_wait: 60, fin_wait: 120, last_ack: 30, syn_sent: 120, syn_recv: 60 };

/** conntrack's TCP timeouts per state, in seconds, as this namespace has them. */
export async function readConntrackTimeouts(ns: string): Promise<Record<string, number>> {
  const files = CONNTRACK_STATES.map((s) => `/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_${s}`);
  const { stdout, exitCode } = await runIn(ns, 'cat', files, { allowFailure: true });
  const values = stdout.split('\n').map(Number);
  if (exitCode !== 0 || values.length !== CONNTRACK_STATES.length || values.some((v) => !Number.isFinite(v))) return DEFAULT_TCP_TIMEOUTS;
  return Object.fromEntries(CONNTRACK_STATES.map((s, i) => [s, values[i]!]));
}

export interface InterfaceAddress {
  ifname: string;
  cidr: string;
}

/** A namespace's IPv4 addresses (lo left out). */
export async function readAddresses(ns: string): Promise<InterfaceAddress[]> {
  const { stdout } = await runIn(ns, 'ip', ['-j', '-4', 'addr', 'show'], { allowFailure: true });
  let links: { ifname: string; addr_info?: { family: string; local: string; prefixlen: number }[] }[] = [];
  try {
    links = JSON.parse(stdout || '[]') as typeof links;
  } catch {
    links = [];
  }
  return links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet' && l.ifname !== 'lo').map((a) => ({ ifname: l.ifname, cidr: `${a.local}/${a.prefixlen}` })));
}

/**
 * nftables mode. kube-proxy's table as nft prints it (`nft list table ip kube-proxy`), and as
 * JSON objects for the parts the checks read. kube-proxy writes no `counter` statements, so
 * where iptables mode reads counters the checks read the ruleset and conntrack instead.
 */
export async function readNftText(ns: string, opts: { allowFailure?: boolean; ipv6?: boolean } = {}): Promise<string> {
  const { stdout } = await runIn(ns, 'nft', ['list', 'table', opts.ipv6 ? 'ip6' : 'ip', 'kube-proxy'], { allowFailure: opts.allowFailure ?? true });
  return stdout;
}

export interface NftObject {
  chain?: { name: string };
  set?: { name: string; timeout?: number; elem?: unknown[] };
  map?: { name: string; elem?: unknown[] };
}

/** `nft -j list table ip kube-proxy` as its objects; none when the table does not exist (yet). */
export async function readNftObjects(ns: string, opts: { ipv6?: boolean } = {}): Promise<NftObject[]> {
  const { stdout, exitCode } = await runIn(ns, 'nft', ['-j', 'list', 'table', opts.ipv6 ? 'ip6' : 'ip', 'kube-proxy'], { allowFailure: true });
  if (exitCode !== 0) return [];
  try {
    return (JSON.parse(stdout) as { nftables: NftObject[] }).nftables;
  } catch {
    return [];
  }
}

/** A set element: a plain value, or {elem: {val, timeout, expires, comment}}. */
export function elementOf(e: unknown): { val: unknown; expires?: number; comment?: string } {
  if (e && typeof e === 'object' && 'elem' in e) {
    const inner = (e as { elem: { val: unknown; expires?: number; comment?: string } }).elem;
    return { val: inner.val, expires: inner.expires, comment: inner.comment };
  }
  return { val: e };
}

/** "affinity-HASH-ns/svc/tcp/port__10.244.0.3/8443" → "10.244.0.3:8443". */
export const endpointOfName = (name: string) => name.slice(name.lastIndexOf('__') + 2).replace('/', ':');

/** sessionAffinity in nftables mode: each affinity-… set (per endpoint) and the client addresses it holds. Pure. */
export function affinitySetsOf(objects: NftObject[]): RecentList[] {
  return objects.flatMap((o) =>
    o.set && o.set.name.startsWith('affinity-') ? [{ chain: o.set.name, endpoint: endpointOfName(o.set.name), sources: (o.set.elem ?? []).map((e) => String(elementOf(e).val)) }] : [],
  );
}

export interface NftMapElement {
  map: string;
  /** "172.31.0.5 . tcp . 443" or "tcp . 32000". */
  key: string;
  /** "goto service-…", "drop"… */
  verdict: string;
  comment?: string;
}

const keyText = (val: unknown): string => (val && typeof val === 'object' && 'concat' in val ? (val as { concat: unknown[] }).concat.map(String).join(' . ') : String(val));
function verdictText(v: unknown): string {
  if (!v || typeof v !== 'object') return String(v);
  const [kind, arg] = Object.entries(v)[0] ?? ['', null];
  return arg && typeof arg === 'object' && 'target' in arg ? `${kind} ${(arg as { target: string }).target}` : kind;
}

/** Every element of kube-proxy's verdict maps. Pure. */
export function nftMapElementsOf(objects: NftObject[]): NftMapElement[] {
  return objects.flatMap((o) =>
    o.map
      ? (o.map.elem ?? []).map((pair) => {
          const [k, v] = pair as [unknown, unknown];
          const { val, comment } = elementOf(k);
          return { map: o.map!.name, key: keyText(val), verdict: verdictText(v), comment };
        })
      : [],
  );
}

/** The endpoint chains of `nft list table` text, by the address they DNAT to ("10.244.1.2:8443" → chains). Pure. */
export function nftDnatChainsOf(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let chain = '';
  for (const line of text.split('\n')) {
    const c = /^\s*chain (\S+) \{/.exec(line);
    if (c) chain = c[1]!;
    const d = /dnat to (\S+)/.exec(line);
    if (d && chain.startsWith('endpoint-')) (out[d[1]!] ??= []).push(chain);
  }
  return out;
}

/**
 * nftables mode's stand-in for DNAT counters: the connections (any protocol) a node's conntrack
 * holds translated to each endpoint, as "proto src:port > dst:port" of their original direction,
 * so a check can count those that appeared during a run.
 */
export async function readTranslatedConnections(ns: string): Promise<Record<string, string[]>> {
  const { stdout } = await runIn(ns, 'conntrack', ['-L'], { allowFailure: true });
  return translatedConnectionsOf(parseConntrack(stdout));
}

/** The DNATed connections among conntrack entries, by the endpoint they were translated to. Pure. */
export function translatedConnectionsOf(entries: ConntrackEntry[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const e of entries) {
    if (e.original.dst === e.reply.src && e.original.dport === e.reply.sport) continue; // not DNATed
    (out[joinHostPort(e.reply.src, e.reply.sport)] ??= []).push(`${e.protocol} ${joinHostPort(e.original.src, e.original.sport)} > ${joinHostPort(e.original.dst, e.original.dport)}`);
  }
  return out;
}
