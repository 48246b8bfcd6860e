import { natChains, restoreRules } from '../kernel/rules.js';
import { kubeProxyRules } from '../plan/kube-proxy/iptables.js';
import { planResync } from '../plan/kube-proxy/resync.js';
import { namespaceName } from '../topology/names.js';
import type { Topology } from '../topology/schema.js';

export interface NodeResync {
  node: string;
  /** Per-service chains created by this sync (a new endpoint's KUBE-SEP…). */
  added: string[];
  /** Per-service chains flushed and deleted by this sync (a removed endpoint's KUBE-SEP…). */
  removed: string[];
  /** Lines of the iptables-restore payload. */
  lines: number;
  /** Time of the one iptables-restore --noflush call. */
  restoreMs: number;
}

/**
 * kube-proxy's reaction to an endpoint change: on every node at once, read the chains it has,
 * then write the whole ruleset for the new endpoints with one atomic iptables-restore --noflush.
 */
export async function resyncRules(t: Topology): Promise<NodeResync[]> {
  return Promise.all(
    t.nodes.map(async (n) => {
      const ns = namespaceName(t.lab, n.name);
      const plan = planResync(await natChains(ns), kubeProxyRules(t, n.name));
      const started = performance.now();
      await restoreRules(ns, plan.payload);
      return {
        node: n.name,
        added: plan.added,
        removed: plan.removed,
        lines: plan.payload.trimEnd().split('\n').length,
        restoreMs: Math.round((performance.now() - started) * 10) / 10,
      };
    }),
  );
}
