import { parseSave } from '../plan/kube-proxy/rules.js';
import type { ProxyMode } from '../topology/schema.js';
import { runIn } from './exec.js';
import { elementOf, endpointOfName, readNftObjects, readRules, recentListRules } from './readers.js';

/**
 * sessionAffinity's memory with its clock: which client each endpoint remembers, and for how
 * much longer. iptables mode: the xt_recent lists (/proc/net/xt_recent/KUBE-SEP-…, timestamps in
 * jiffies) read with the kernel's jiffies counter (/proc/timer_list); nftables mode: the
 * affinity-… sets, whose elements carry the kernel's own "expires". Parsing is pure.
 */

/** One client remembered by one endpoint. */
export interface AffinityEntry {
  /** The KUBE-SEP-… list, or the affinity-… set. */
  set: string;
  /** The endpoint the set's chain DNATs to ("10.244.0.3:8443"). */
  endpoint: string;
  client: string;
  /** iptables mode: the list's timestamps of this client, in jiffies, oldest first. */
  stamps?: number[];
  /** Seconds since the client was last seen (iptables mode, once the tick rate is known). */
  ageS?: number;
  /** Seconds until the kernel forgets it (nftables mode: the element's "expires"). */
  expiresS?: number;
}

/** The kernel's tick counter and its monotonic clock, read at one instant. */
export interface JiffiesSample {
  jiffies: number;
  ns: number;
}

export interface AffinityState {
  mode: ProxyMode;
  entries: AffinityEntry[];
  /** The timeout of each set, in seconds (iptables: the --rcheck rule's --seconds). */
  timeouts: Record<string, number>;
  /** iptables mode: the clock at the time of reading. */
  sample?: JiffiesSample;
  /** iptables mode: packets matched by the --rcheck rules (the affinity rules) of this node. */
  affinityHits?: number;
}

/** "now at 13102249930557 nsecs" and "jiffies: 4298167818" of /proc/timer_list. Pure. */
export function parseJiffies(text: string): JiffiesSample | undefined {
  const ns = /^now at (\d+) nsecs/m.exec(text);
  const j = /^jiffies: (\d+)/m.exec(text);
  return ns && j ? { jiffies: Number(j[1]), ns: Number(ns[1]) } : undefined;
}

const KNOWN_HZ = [100, 250, 300, 1000];
/**
 * The kernel's tick rate (CONFIG_HZ) from two samples of the same clock; undefined until they are
 * far enough apart to tell the known rates apart. Pure.
 */
export function tickRate(a: JiffiesSample, b: JiffiesSample): number | undefined {
  const seconds = (b.ns - a.ns) / 1e9;
  if (seconds < 0.08) return undefined;
  const raw = (b.jiffies - a.jiffies) / seconds;
  const best = KNOWN_HZ.reduce((x, y) => (Math.abs(y - raw) < Math.abs(x - raw) ? y : x));
  return Math.abs(best - raw) / best < 0.15 ? best : undefined;
}

/**
 * One xt_recent list: "src=10.241.0.4 ttl: 63 last_seen: 4298167810 oldest_pkt: 2 4298167483, 4298167810"
 * per remembered source. Pure.
 */
export function parseRecentList(set: string, endpoint: string, text: string): AffinityEntry[] {
  return text
    .split('\n')
    .map((line) => /^src=(\S+) .*oldest_pkt: \d+ ([\d, ]+)$/.exec(line.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ set, endpoint, client: m[1]!, stamps: m[2]!.split(',').map((s) => Number(s.trim())).filter((n) => n > 0).sort((a, b) => a - b) }));
}

/** Seconds since the entry's last timestamp, at `now`, with the tick rate `hz`. Pure. */
export const ageOf = (e: AffinityEntry, now: JiffiesSample, hz: number) => (now.jiffies - Math.max(...(e.stamps ?? [now.jiffies]))) / hz;

/**
 * Whether the kernel would still find `client` in an affinity set (the rule that sends it to its
 * endpoint would match): iptables, a timestamp younger than the --seconds of its list (xt_recent's
 * own test); nftables, an element not yet expired (nft lists only those). Undefined while the
 * iptables tick rate is unknown. Pure.
 */
export function remembered(state: AffinityState, client: string, hz?: number): boolean | undefined {
  const mine = state.entries.filter((e) => e.client === client);
  if (state.mode === 'nftables') return mine.length > 0;
  if (mine.length === 0) return false;
  if (!hz || !state.sample) return undefined;
  // xt_recent's own test: a timestamp counts while jiffies - stamp <= seconds * HZ.
  return mine.some((e) => state.sample!.jiffies - Math.max(...(e.stamps ?? [0])) <= (state.timeouts[e.set] ?? 0) * hz);
}

/** A node's affinity memory, its clock, and (iptables) how often the affinity rules matched. */
export async function readAffinityState(ns: string, mode: ProxyMode): Promise<AffinityState> {
  if (mode === 'nftables') {
    const entries: AffinityEntry[] = [];
    const timeouts: Record<string, number> = {};
    for (const o of await readNftObjects(ns)) {
      const s = o.set;
      if (!s?.name.startsWith('affinity-')) continue;
      timeouts[s.name] = s.timeout ?? 0;
      for (const e of s.elem ?? []) {
        const { val, expires } = elementOf(e);
        entries.push({ set: s.name, endpoint: endpointOfName(s.name), client: String(val), expiresS: expires });
      }
    }
    return { mode, entries, timeouts };
  }
  const nat = parseSave(await readRules(ns, { table: 'nat', counters: true })).rules;
  const lists = recentListRules(nat);
  const checks = nat.filter((r) => r.options.has('--rcheck'));
  const timeouts = Object.fromEntries(checks.map((r) => [r.options.get('--name') ?? r.options.get('-j')!, Number(r.options.get('--seconds') ?? 0)]));
  const files = lists.map((r) => `/proc/net/xt_recent/${r.chain}`);
  // One command: every list, then the clock, so the ages are taken at one instant.
  const script = 'for f in "$@"; do echo "== $f"; cat "$f"; done; awk \'/^now at/{print} /^jiffies:/{print; exit}\' /proc/timer_list';
  const { stdout } = await runIn(ns, 'sh', ['-c', script, 'sh', ...files], { allowFailure: true });
  const entries: AffinityEntry[] = [];
  for (const part of stdout.split('== ').slice(1)) {
    const [head, ...rest] = part.split('\n');
    const chain = head!.slice(head!.lastIndexOf('/') + 1);
    const list = lists.find((r) => r.chain === chain);
    if (list) entries.push(...parseRecentList(chain, list.options.get('--to-destination')!, rest.join('\n')));
  }
  return { mode, entries, timeouts, sample: parseJiffies(stdout), affinityHits: checks.reduce((n, r) => n + (r.counters?.packets ?? 0), 0) };
}

export interface AffinityExpiry {
  /** The client's entries when the wait began, with their age (iptables) or expiry (nftables). */
  before: AffinityEntry[];
  /** The kernel no longer remembers the client (every entry older than its timeout, or gone). */
  expired: boolean;
  waitedMs: number;
  polls: number;
  timeoutS: number;
  /** iptables: the affinity rules' packet counters when the wait began. */
  affinityHits?: number;
  hz?: number;
  /** The wait was not attempted: the timeout is longer than a verify run waits (MAX_AFFINITY_WAIT_S). */
  tooLong?: boolean;
}

/** The longest affinity timeout a verify run waits out: a walkthrough about expiry uses a short one. */
export const MAX_AFFINITY_WAIT_S = 60;

/**
 * Wait until a node's kernel has forgotten `client`: poll its affinity state (every 100 ms) until
 * no set would still match the client, or the deadline (the timeout plus `marginMs`) passes. No
 * fixed sleep: the wait ends at the first poll that sees the expiry.
 */
export async function waitForAffinityExpiry(ns: string, mode: ProxyMode, client: string, marginMs = 10_000): Promise<AffinityExpiry> {
  const started = performance.now();
  const first = await readAffinityState(ns, mode);
  const timeoutS = Math.max(0, ...first.entries.filter((e) => e.client === client).map((e) => first.timeouts[e.set] ?? 0));
  let hz: number | undefined;
  let polls = 1;
  let state = first;
  const mine = first.entries.filter((e) => e.client === client);
  if (timeoutS > MAX_AFFINITY_WAIT_S) return { before: mine, expired: false, waitedMs: 0, polls, timeoutS, affinityHits: first.affinityHits, tooLong: true };
  // The deadline: the timeout the rules carry, and a margin for a loaded machine.
  const deadlineMs = timeoutS * 1000 + marginMs;
  for (;;) {
    if (mode === 'iptables' && first.sample && state.sample) hz ??= tickRate(first.sample, state.sample);
    if (remembered(state, client, hz) === false) break;
    if (performance.now() - started > deadlineMs) break;
    await new Promise((r) => setTimeout(r, 100));
    state = await readAffinityState(ns, mode);
    polls++;
  }
  const before = mine.map((e) => (hz && first.sample ? { ...e, ageS: Math.round(ageOf(e, first.sample, hz) * 100) / 100 } : e));
  return { before, expired: remembered(state, client, hz) === false, waitedMs: Math.round(performance.now() - started), polls, timeoutS, affinityHits: first.affinityHits, hz };
}
