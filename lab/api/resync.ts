import { applyProxyRules, proxyExisting } from '../kernel/rules.js';
import { planProxySync } from '../plan/kube-proxy/sync.js';
import { namespaceName } from '../topology/names.js';
import type { ProxyMode, Topology } from '../topology/schema.js';

export interface NodeResync {
  node: string;
  mode: ProxyMode;
  /** Per-service chains created by this sync (a new endpoint's KUBE-SEP / endpoint- chain…). */
  added: string[];
  /** Per-service chains flushed and deleted by this sync (a removed endpoint's chain…). */
  removed: string[];
  /** Lines of the payload. */
  lines: number;
  /** Time of the one iptables-restore --noflush (or nft -f) call. */
  restoreMs: number;
}

/**
 * kube-proxy's reaction to an endpoint change: on every node at once, read the chains it has,
 * then write the whole ruleset for the new endpoints in one atomic call (iptables-restore
 * --noflush, or one nft -f transaction in nftables mode).
 */
export async function resyncRules(t: Topology): Promise<NodeResync[]> {
  return Promise.all(
    t.nodes.map(async (n) => {
      const ns = namespaceName(t.lab, n.name);
      const plan = planProxySync(t, n.name, await proxyExisting(ns, t.kubeProxy.mode));
      const started = performance.now();
      await applyProxyRules(ns, plan.mode, plan.payload);
      return {
        node: n.name,
        mode: plan.mode,
        added: plan.added,
        removed: plan.removed,
        lines: plan.payload.trimEnd().split('\n').length,
        restoreMs: Math.round((performance.now() - started) * 10) / 10,
      };
    }),
  );
}
