import { resyncRestore, type NodeRuleset } from './iptables.js';

/**
 * A resync after endpoints change, the way kube-proxy's full sync does it: read which chains
 * the node has, write the new ruleset over kube-proxy's own chains in one iptables-restore
 * --noflush (declaring a chain flushes it), and delete the per-service chains nothing uses any
 * more (a removed endpoint's KUBE-SEP, a KUBE-SVL left without local endpoints). Pure.
 */

/** The per-service chains kube-proxy owns and deletes when they go stale. */
export const SERVICE_CHAIN = /^KUBE-(SVC|SVL|EXT|FW|SEP)-/;

export interface ResyncPlan {
  payload: string;
  /** Per-service nat chains the new ruleset declares that the node did not have. */
  added: string[];
  /** Per-service nat chains the node had that the new ruleset drops: flushed, then deleted (-X). */
  removed: string[];
}

export function planResync(existingNatChains: string[], rules: NodeRuleset): ResyncPlan {
  const existing = new Set(existingNatChains);
  const wanted = new Set(rules.nat.chains);
  const removed = existingNatChains.filter((c) => SERVICE_CHAIN.test(c) && !wanted.has(c));
  const added = rules.nat.chains.filter((c) => SERVICE_CHAIN.test(c) && !existing.has(c));
  return { payload: resyncRestore(rules, removed), added, removed };
}
