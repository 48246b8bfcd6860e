/**
 * Where a packet of a traced connection died, in the kernel's own words: a hop of the player
 * carries one when the run saw it (the skb:kfree_skb tracepoint's reason, see lab trace).
 */
export interface HopDrop {
  /** The kernel's name for it: NETFILTER_DROP, IP_INNOROUTES, … */
  reason: string;
  /** The lab host (namespace) where it happened. */
  netns: string;
  device?: string;
  /** For a netfilter drop: the rule that dropped it, as its tool prints it. */
  rule?: string;
}
