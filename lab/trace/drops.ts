import type { WalkHop, WalkRule } from './walk.js';

/**
 * Why a packet died, in the kernel's own words: the skb:kfree_skb tracepoint's drop reason, tied
 * to the lab host and device where it happened. kfree_skb carries only the skb's address, so the
 * device comes from the net:net_dev_queue / net:netif_receive_skb events on the same skb just
 * before it, and the host from walking those devices along the lab's veth pairs. Pure.
 */

export interface PacketDrop {
  /** The kernel's name for it (enum skb_drop_reason): NETFILTER_DROP, IP_INNOROUTES, NO_SOCKET… */
  reason: string;
  /** What the reason means, in a few words. */
  meaning: string;
  host: string;
  netns: string;
  /** The device the packet was last seen on before it died. */
  device?: string;
  direction: 'request' | 'reply';
  /** Where in the kernel: function+offset, as the tracepoint prints it. */
  location: string;
  /** For a netfilter drop: the rule (or chain policy) the netfilter trace saw drop it. */
  rule?: { table: string; chain: string; rule: string; comment?: string };
  /** How many times (a retransmitted SYN dies again). */
  count: number;
}

/** One tracefs line, parsed. */
export type KernelEvent =
  | { kind: 'free'; at: number; skb: string; reason: string; location: string }
  | { kind: 'queue' | 'receive'; at: number; skb: string; dev: string }
  | { kind: 'marker'; at: number; text: string };

const LINE = /^\s*.+?-\d+\s+(?:\(\s*[\d-]+\)\s+)?\[\d+\]\s+(?:\S+\s+)?(\d+\.\d+): (\w+): (.*)$/;

/** Parse the `trace` (or trace_pipe) text of an instance; lines of other events are skipped. */
export function parseKernelEvents(text: string): KernelEvent[] {
  const out: KernelEvent[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [, ts, event, rest] = m as unknown as [string, string, string, string];
    const at = Number(ts);
    const field = (k: string) => new RegExp(`\\b${k}=(\\S+)`).exec(rest)?.[1];
    if (event === 'tracing_mark_write') out.push({ kind: 'marker', at, text: rest.trim() });
    else if (event === 'kfree_skb') {
      const skb = field('skbaddr');
      if (skb) out.push({ kind: 'free', at, skb, reason: /reason: (\w+)/.exec(rest)?.[1] ?? 'NOT_SPECIFIED', location: field('location') ?? '?' });
    } else if (event === 'net_dev_queue' || event === 'netif_receive_skb') {
      const [skb, dev] = [field('skbaddr'), field('dev')];
      if (skb && dev) out.push({ kind: event === 'net_dev_queue' ? 'queue' : 'receive', at, skb, dev });
    }
  }
  return out;
}

/** The lab's devices: which host holds which names, and its veth pairs (from the network plan). */
export interface LabDevices {
  byHost: Record<string, string[]>;
  veths: { a: { host: string; dev: string }; b: { host: string; dev: string } }[];
}

/** The devices and veth pairs of a network plan's `ip` batch lines (namespace name → host). */
export function labDevicesOf(plan: { createBatch: string[]; namespaces: { ns: string; host: string; batch: string[] }[] }): LabDevices {
  const hostOf = new Map(plan.namespaces.map((n) => [n.ns, n.host]));
  const byHost: Record<string, string[]> = Object.fromEntries(plan.namespaces.map((n) => [n.host, ['lo']]));
  const veths: LabDevices['veths'] = [];
  for (const line of plan.createBatch) {
    const m = /^link add name (\S+) .*?netns (\S+) type veth peer name (\S+) .*?netns (\S+)$/.exec(line);
    const [ha, hb] = [hostOf.get(m?.[2] ?? ''), hostOf.get(m?.[4] ?? '')];
    if (!m || !ha || !hb) continue;
    veths.push({ a: { host: ha, dev: m[1]! }, b: { host: hb, dev: m[3]! } });
    byHost[ha]!.push(m[1]!);
    byHost[hb]!.push(m[3]!);
  }
  for (const n of plan.namespaces) for (const line of n.batch) {
    const dev = /^link add (?:name )?(\S+)/.exec(line)?.[1];
    if (dev) byHost[n.host]!.push(dev);
  }
  return { byHost, veths };
}

/** Every device name of the lab, once: the tracefs filter of the net events. */
export const deviceNames = (d: LabDevices) => [...new Set(Object.values(d.byHost).flat())].filter((n) => n !== 'lo').sort();

type DevEvent = Extract<KernelEvent, { kind: 'queue' | 'receive' }>;

/**
 * The host of the last event of a chain of one skb's device events, or undefined when the names
 * leave it open (eth0 is in every node, client and pod). Along the chain the skb stays in one
 * namespace, except where it is queued on a veth and received on its peer.
 */
export function hostOfChain(chain: DevEvent[], d: LabDevices): string | undefined {
  const holders = (dev: string) => Object.keys(d.byHost).filter((h) => d.byHost[h]!.includes(dev));
  let hosts: string[] = [];
  chain.forEach((e, i) => {
    const prev = chain[i - 1];
    const peers = prev?.kind === 'queue' && e.kind === 'receive' ? d.veths.flatMap(({ a, b }) => [[a, b], [b, a]] as const).filter(([x, y]) => x.dev === prev.dev && hosts.includes(x.host) && y.dev === e.dev).map(([, y]) => y.host) : [];
    const same = hosts.filter((h) => d.byHost[h]!.includes(e.dev));
    hosts = peers.length > 0 ? peers : same.length > 0 ? same : holders(e.dev);
  });
  return hosts.length === 1 ? hosts[0] : undefined;
}

export interface KernelDrop {
  reason: string;
  location: string;
  at: number;
  host?: string;
  device?: string;
}

/** How long before its free an skb's device event still counts as the same packet's (seconds). */
const CHAIN_WINDOW_S = 0.5;

/** The drops between the two markers, each with the host and device its skb was last seen on. */
export function kernelDrops(events: KernelEvent[], d: LabDevices, from: string, to: string): KernelDrop[] {
  const start = events.find((e) => e.kind === 'marker' && e.text.includes(from))?.at ?? -Infinity;
  const end = events.find((e) => e.kind === 'marker' && e.text.includes(to))?.at ?? Infinity;
  const chains = new Map<string, DevEvent[]>();
  const out: KernelDrop[] = [];
  for (const e of events) {
    if (e.kind === 'marker') continue;
    if (e.kind !== 'free') {
      chains.set(e.skb, [...(chains.get(e.skb) ?? []), e]);
      continue;
    }
    const chain = (chains.get(e.skb) ?? []).filter((c) => e.at - c.at <= CHAIN_WINDOW_S);
    chains.delete(e.skb); // the address is free for the next skb
    if (e.at < start || e.at > end) continue;
    out.push({ reason: e.reason, location: e.location, at: e.at, host: hostOfChain(chain, d), device: chain.at(-1)?.dev });
  }
  return out;
}

const MEANINGS: Record<string, string> = {
  NETFILTER_DROP: 'a netfilter rule or chain policy dropped it',
  IP_INNOROUTES: 'no route to its destination (as it came in)',
  IP_OUTNOROUTES: 'no route to its destination (as it was sent)',
  NO_SOCKET: 'no socket takes it: nothing listens on that port',
  OTHERHOST: 'the frame was addressed to another host',
  IP_RPFILTER: 'the reverse-path filter refused its source',
  NEIGH_FAILED: 'its next hop did not answer ARP',
  IP_INADDRERRORS: 'its destination address is not one it can be delivered to',
  TCP_FLAGS: 'TCP flags that fit no connection state',
  NOT_SPECIFIED: 'the kernel gave no reason',
};
/**
 * Reasons that are never a packet dying on its way: QUEUE_PURGE frees the skbs still queued on a
 * socket as it closes (sk_stream_kill_queues), e.g. a node's health check server's, and under
 * load that lands in a trace's window on the very host and device its walk ended at.
 */
const NOT_ON_PATH = new Set(['QUEUE_PURGE']);
export const onPath = (reason: string) => !NOT_ON_PATH.has(reason);

export const meaningOf = (reason: string) => MEANINGS[reason] ?? 'see enum skb_drop_reason in include/net/dropreason-core.h';

/** The rule that dropped it, from the hop's netfilter trace, or its base chain's DROP policy. */
function droppingRule(hop: WalkHop): PacketDrop['rule'] {
  const rule: WalkRule | undefined = hop.hooks.flatMap((h) => h.rules).find((r) => r.verdict === 'DROP' || r.verdict === 'REJECT');
  if (rule) return { table: rule.table, chain: rule.chain, rule: rule.rule, ...(rule.comment ? { comment: rule.comment } : {}) };
  const hook = hop.hooks.find((h) => h.policy === 'DROP');
  return hook ? { table: hook.hook.split(' ')[0]!, chain: hook.hook.split(' ').slice(1).join(' '), rule: 'policy drop' } : undefined;
}

/**
 * Keep the drops of this connection: those on a host and device where its walk ended (the
 * netfilter trace saw it dropped there, or it is the last host the trace saw it at). Another packet that
 * died meanwhile on a device the walk never ended at is not this connection's.
 */
export function connectionDrops(drops: KernelDrop[], hops: WalkHop[], netnsOf: (host: string) => string): PacketDrop[] {
  const out: PacketDrop[] = [];
  // IPv6's multicast input frees its copy of an NDP or MLD packet (NOT_SPECIFIED): never the unicast connection's.
  drops = drops.filter((k) => onPath(k.reason) && !k.location.startsWith('ip6_mc_input'));
  // Where the walk ended each way: the netfilter trace saw the packet arrive there, and nowhere after.
  const lastOf = (direction: string) => hops.filter((h) => h.direction === direction).at(-1);
  for (const k of drops) {
    const ends = hops.filter((h) => h.host === k.host && k.device !== undefined && (h.iif === k.device || h.oif === k.device) && (h.fate !== 'ACCEPT' || h === lastOf(h.direction)));
    const hop = ends.find((h) => (k.reason === 'NETFILTER_DROP') === (h.fate !== 'ACCEPT')) ?? ends[0];
    if (!hop || !k.host) continue;
    const same = out.find((o) => o.host === k.host && o.reason === k.reason && o.device === k.device && o.location === k.location);
    if (same) {
      same.count++;
      continue;
    }
    const rule = k.reason === 'NETFILTER_DROP' ? droppingRule(hop) : undefined;
    out.push({ reason: k.reason, meaning: meaningOf(k.reason), host: k.host, netns: netnsOf(k.host), device: k.device, direction: hop.direction, location: k.location, ...(rule ? { rule } : {}), count: 1 });
  }
  // A reason the kernel named before NOT_SPECIFIED: under load a retransmitted SYN's copy can also
  // be freed without a reason at the same hop, and the first drop is the one people read.
  return [...out.filter((o) => o.reason !== 'NOT_SPECIFIED'), ...out.filter((o) => o.reason === 'NOT_SPECIFIED')];
}
