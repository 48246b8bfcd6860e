import { servicePorts } from '../endpoints.js';
import type { Topology } from '../../topology/schema.js';
import { isLargeClusterPorts, serviceKey } from './iptables.js';

/**
 * Which sync kube-proxy would run after a change (pkg/proxy/{iptables,nftables}/proxier.go):
 * a full sync when it must (its first sync, after a failed one, or when something beyond
 * Services and endpoints changed, such as the node set), otherwise a partial one that rewrites
 * only the services whose Service or endpoints changed (the change trackers' UpdatedServices). Pure.
 */
export type SyncScope = { full: true } | { full: false; services: Set<string> };

/** kube-proxy's default --iptables-sync-period (and --nftables-sync-period). */
export const SYNC_PERIOD_MS = 30_000;

export function syncScope(before: Topology, after: Topology): SyncScope {
  const global = (t: Topology) => JSON.stringify([t.cluster, t.nodes, t.kubeProxy]);
  if (global(before) !== global(after)) return { full: true };
  const was = signatures(before);
  const now = signatures(after);
  const services = new Set<string>();
  for (const key of new Set([...was.keys(), ...now.keys()])) if (was.get(key) !== now.get(key)) services.add(key);
  return { full: false, services };
}

/** Per service, everything its rules depend on: the spec and each port's endpoints. */
function signatures(t: Topology): Map<string, string> {
  const out = new Map<string, string>();
  for (const sp of servicePorts(t)) {
    const key = serviceKey(sp.service);
    out.set(key, `${out.get(key) ?? ''}${JSON.stringify([sp.service, sp.port, sp.endpoints, sp.terminating])}`);
  }
  return out;
}

/** kube-proxy's largeClusterMode: more than 1000 endpoints over all service ports. */
export const isLargeCluster = (t: Topology) => isLargeClusterPorts(servicePorts(t));

/**
 * Whether this sync reads the node's chains to delete stale ones. iptables mode does (one
 * iptables-save) on every sync, except in largeClusterMode, where it does so at most once per
 * sync period. nftables mode lists chains and sets on every sync.
 */
export function sweepsStaleChains(t: Topology, msSinceLastSweep: number | undefined): boolean {
  if (t.kubeProxy.mode === 'nftables' || !isLargeCluster(t)) return true;
  return msSinceLastSweep === undefined || msSinceLastSweep > SYNC_PERIOD_MS;
}
