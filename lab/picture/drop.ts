import type { PathHops } from './hops.js';

/**
 * Where a packet of a traced connection died, in the kernel's own words: a hop of the player
 * carries one when the run saw it (the skb:kfree_skb tracepoint's reason, recorded by every
 * verify for its unanswered requests and by lab trace), or when the request was last seen there
 * and never answered. Pure.
 */
export interface HopDrop {
  /** The kernel's name for it: NETFILTER_DROP, IP_INNOROUTES, …; absent when the kernel's reason was not recorded. */
  reason?: string;
  meaning?: string;
  /** The lab host where it happened. */
  host: string;
  netns?: string;
  device?: string;
  /** For a netfilter drop: the rule that dropped it, as its tool prints it. */
  rule?: string;
  /** The packet was not seen on `host` itself: it died after this hop. */
  after?: boolean;
}

/** A drop as verify or lab trace recorded it. */
export interface RecordedDrop {
  reason: string;
  meaning?: string;
  host: string;
  netns?: string;
  device?: string;
  direction?: 'request' | 'reply';
  rule?: string | { table: string; chain: string; rule: string };
}

const ruleText = (r: RecordedDrop['rule']) => (r === undefined || typeof r === 'string' ? r : `${r.table} ${r.chain}: ${r.rule}`);
const hostOf = (point: string) => point.split(':')[0]!;

/**
 * The drop of each direction at the hop where its packet was last seen, by index into the
 * player's hops (the request's, then the reply's). A packet dies where it stops: a drop on the
 * host of that direction's last hop, else one on a host the packet was never seen at (it died
 * after that hop); a drop on a host it went on from was another packet's (the window is shared),
 * as is one on a host only the other direction passed, and a reasonless one elsewhere (a
 * broadcast every host drops). Among a host's drops the netfilter one
 * goes first (it names its rule). A request that was never answered and has no recorded drop is
 * marked at its last hop, without a reason.
 */
export function dropsAtHops(hops: PathHops | undefined, drops: RecordedDrop[], answered: boolean): Record<number, HopDrop> {
  if (!hops) return {};
  const out: Record<number, HopDrop> = {};
  const seen = new Set([...hops.request, ...hops.reply].map((h) => hostOf(h.point)));
  for (const direction of ['request', 'reply'] as const) {
    const list = hops[direction];
    const last = list.at(-1);
    if (!last) continue;
    const mine = drops.filter((d) => (d.direction ?? (answered ? 'reply' : 'request')) === direction);
    const rank = (d: RecordedDrop) => 2 * Number(d.host === hostOf(last.point)) + Number(d.reason === 'NETFILTER_DROP');
    const d = mine.filter((x) => x.host === hostOf(last.point) || (!seen.has(x.host) && x.reason !== 'NOT_SPECIFIED')).sort((a, b) => rank(b) - rank(a))[0];
    if (!d) continue;
    const rule = ruleText(d.rule);
    out[(direction === 'reply' ? hops.request.length : 0) + list.length - 1] = { reason: d.reason, host: d.host, ...(d.meaning ? { meaning: d.meaning } : {}), ...(d.netns ? { netns: d.netns } : {}), ...(d.device ? { device: d.device } : {}), ...(rule ? { rule } : {}), ...(d.host !== hostOf(last.point) ? { after: true } : {}) };
  }
  if (!answered && Object.keys(out).length === 0 && hops.request.length > 0) {
    const last = hops.request.at(-1)!;
    out[hops.request.length - 1] = { host: hostOf(last.point) };
  }
  return out;
}
