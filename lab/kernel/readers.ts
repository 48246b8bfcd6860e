import { parseSave, type ParsedRule } from '../plan/kube-proxy/rules.js';
import { parseConntrack, type ConntrackEntry } from './conntrack.js';
import { runIn } from './exec.js';

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
export async function readRules(ns: string, opts: { table?: string; counters?: boolean; allowFailure?: boolean } = {}): Promise<string> {
  const args = [...(opts.counters ? ['-c'] : []), ...(opts.table ? ['-t', opts.table] : [])];
  const { stdout } = await runIn(ns, 'iptables-save', args, { allowFailure: opts.allowFailure ?? true });
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
export async function readRuleCounters(ns: string): Promise<ParsedRule[]> {
  return parseSave(await readRules(ns, { counters: true })).rules;
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

export interface RecentList {
  /** The KUBE-SEP chain whose "recent --set" rule fills this list. */
  chain: string;
  /** The endpoint that chain DNATs to. */
  endpoint: string;
  sources: string[];
}

/**
 * sessionAffinity's memory on a node: each KUBE-SEP chain with a "recent --set" rule, the
 * endpoint it DNATs to, and the source addresses its list (/proc/net/xt_recent/<chain>) holds.
 */
export async function readRecentLists(ns: string): Promise<RecentList[]> {
  const seps = parseSave(await readRules(ns, { table: 'nat' })).rules.filter((r) => r.chain.startsWith('KUBE-SEP-') && r.modules.includes('recent') && r.options.get('--to-destination'));
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
