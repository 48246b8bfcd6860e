import { applyProxyRules, proxyExisting } from '../kernel/rules.js';
import { log } from '../log.js';
import { planChangeSync } from '../plan/kube-proxy/sync.js';
import { sweepsStaleChains, syncScope, type SyncScope } from '../plan/kube-proxy/scope.js';
import type { LabStore } from '../state/store.js';
import { namespaceName } from '../topology/names.js';
import type { ProxyMode, Topology } from '../topology/schema.js';
import { isDualStack } from '../topology/family.js';

export interface NodeResync {
  node: string;
  mode: ProxyMode;
  /** kube-proxy's kind of sync: partial (only the changed services' chains) or full. */
  sync: 'partial' | 'full';
  /** Services whose chains this sync rewrote (all of them on a full sync). */
  services: number;
  /** Per-service chains created by this sync (a new endpoint's KUBE-SEP / endpoint- chain…). */
  added: string[];
  /** Per-service chains flushed and deleted by this sync (a removed endpoint's chain…). */
  removed: string[];
  /** Dual-stack: the IPv6 proxier's per-service chains created (ip6 tables). */
  added6?: string[];
  /** Dual-stack: the IPv6 proxier's stale per-service chains flushed and deleted (ip6 tables). */
  removed6?: string[];
  /** The node's chains were read to sweep stale ones (iptables largeClusterMode does so once per sync period). */
  swept: boolean;
  /** Lines of the payload. */
  lines: number;
  /** Time of the one iptables-restore --noflush (or nft -f) call. */
  restoreMs: number;
}

/**
 * kube-proxy's reaction to an endpoint change from `before` to `after`, on every node at once:
 * a partial sync (only the services whose Service or endpoints changed are rewritten; the
 * top-level chains always), unless a full one is due (an earlier change whose sync did not
 * finish, or more than Services and endpoints changed); one atomic call per node
 * (iptables-restore --noflush, or one nft -f transaction). A partial sync that fails is
 * followed at once by a full one, as kube-proxy's next sync after a failure is full.
 */
export async function resyncRules(before: Topology, after: Topology, store: LabStore): Promise<NodeResync[]> {
  const scope: SyncScope = store.needFullSync ? { full: true } : syncScope(before, after);
  const last = store.state.proxySync?.lastSweep;
  const sweep = scope.full || sweepsStaleChains(after, last ? Date.now() - Date.parse(last) : undefined);
  let out: NodeResync[];
  try {
    out = await syncNodes(before, after, scope, sweep);
  } catch (err) {
    if (scope.full) throw err;
    log.warn({ lab: after.lab, err: String(err) }, 'partial sync failed: syncing in full');
    out = await syncNodes(before, after, { full: true }, true);
  }
  store.recordProxySync(out.every((n) => n.swept));
  return out;
}

function syncNodes(before: Topology, after: Topology, scope: SyncScope, sweep: boolean): Promise<NodeResync[]> {
  const mode = after.kubeProxy.mode;
  return Promise.all(
    after.nodes.map(async (n) => {
      const ns = namespaceName(after.lab, n.name);
      const existing = sweep ? await proxyExisting(ns, mode) : undefined;
      // The IPv6 proxier (dual-stack) reads its own tables for the same sweep.
      const existing6 = sweep && isDualStack(after) ? await proxyExisting(ns, mode, 'IPv6') : undefined;
      const plan = planChangeSync(before, after, n.name, scope, existing, existing6);
      const started = performance.now();
      if (plan.payload) await applyProxyRules(ns, plan.mode, plan.payload);
      if (plan.payload6) await applyProxyRules(ns, plan.mode, plan.payload6, { family: 'IPv6' });
      return {
        node: n.name,
        mode: plan.mode,
        sync: scope.full ? 'full' : 'partial',
        services: scope.full ? after.services.length : scope.services.size,
        added: plan.added,
        removed: plan.removed,
        ...(plan.added6 && plan.removed6 ? { added6: plan.added6, removed6: plan.removed6 } : {}),
        swept: sweep,
        lines: plan.payload ? plan.payload.trimEnd().split('\n').length : 0,
        restoreMs: Math.round((performance.now() - started) * 10) / 10,
      };
    }),
  );
}
