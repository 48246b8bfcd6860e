import { resyncRestore, SERVICE_CHAIN, type NodeRuleset } from './iptables.js';

/**
 * A resync after endpoints change, the way kube-proxy's syncProxyRules does it: write the
 * ruleset over kube-proxy's own chains in one iptables-restore --noflush (declaring a chain
 * flushes it), and delete the per-service chains nothing uses any more (a removed endpoint's
 * KUBE-SEP, a KUBE-SVL left without local endpoints). On a partial sync the ruleset declares
 * only the changed services' chains; the unchanged ones are still in use. Pure.
 */

export interface ResyncPlan {
  payload: string;
  /** Per-service nat chains this sync creates. */
  added: string[];
  /** Per-service nat chains the node had that the new ruleset drops: flushed, then deleted (-X). */
  removed: string[];
}

/**
 * `existingNatChains`: the node's nat chains as iptables-save lists them, or undefined when this
 * sync skips the stale-chain sweep (largeClusterMode, swept less than a sync period ago).
 * `previous`: the per-service chains the last sync left in use (default: the existing ones).
 */
export function planResync(existingNatChains: string[] | undefined, rules: NodeRuleset, previous: string[] = existingNatChains ?? []): ResyncPlan {
  const active = new Set(rules.activeServiceChains);
  const removed = (existingNatChains ?? []).filter((c) => SERVICE_CHAIN.test(c) && !active.has(c));
  const had = new Set(previous);
  const added = rules.activeServiceChains.filter((c) => !had.has(c));
  return { payload: resyncRestore(rules, removed), added, removed };
}
