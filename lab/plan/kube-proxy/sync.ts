import type { ProxyMode, Topology } from '../../topology/schema.js';
import { initialRestore, kubeProxyRules } from './iptables.js';
import { nftablesRules, planNftPartialSync, planNftSync, type NftExisting } from './nftables.js';
import { planResync } from './resync.js';
import type { SyncScope } from './scope.js';
import { ipv6View } from '../../topology/family.js';

/**
 * The one seam between a topology and a node's kube-proxy rules, whatever the proxy mode:
 * what the node has now in, one payload for one atomic call out (iptables-restore --noflush,
 * or nft -f). `up` and every endpoint change (scale, kill, revive) go through here. Pure.
 */
export interface ProxySync {
  mode: ProxyMode;
  /** Empty when a partial sync has nothing to write (nftables mode, nothing changed). */
  payload: string;
  /** Per-service chains created by this sync (a new endpoint's KUBE-SEP / endpoint- chain…). */
  added: string[];
  /** Per-service chains flushed and deleted by this sync. */
  removed: string[];
  /**
   * A dual-stack cluster: the IPv6 proxier's payload (ip6tables-restore, or nft -f for
   * `table ip6 kube-proxy`), written from the same change over the topology's IPv6 view.
   * Absent on an IPv4-only cluster.
   */
  payload6?: string;
  /** The IPv6 proxier's per-service chains created by this sync (dual-stack only). */
  added6?: string[];
  /** The IPv6 proxier's stale per-service chains flushed and deleted by this sync (dual-stack only). */
  removed6?: string[];
}

/** What a node has now: nat chain names (iptables mode), or the table's chains and sets (nftables mode). */
export interface ProxyExisting {
  natChains: string[];
  nft: NftExisting;
}

export const NOTHING_YET: ProxyExisting = { natChains: [], nft: { chains: [], sets: [] } };

/**
 * A full sync: every chain kube-proxy owns written again, from what the node has (or a fresh
 * node). `existing6`: what the node's ip6 tables have (dual-stack; default: as `existing`).
 */
export function planProxySync(t: Topology, node: string, existing: ProxyExisting | 'fresh', existing6: ProxyExisting | 'fresh' = existing): ProxySync {
  return withIPv6(planFamilySync(t, node, existing), t, node, existing6);
}

function planFamilySync(t: Topology, node: string, existing: ProxyExisting | 'fresh'): ProxySync {
  const mode = t.kubeProxy.mode;
  if (mode === 'nftables') return { mode, ...planNftSync(existing === 'fresh' ? NOTHING_YET.nft : existing.nft, nftablesRules(t, node)) };
  const rules = kubeProxyRules(t, node);
  // A fresh node also gets the jumps from the built-in chains and the canary chains.
  if (existing === 'fresh') return { mode, payload: initialRestore(rules), added: rules.activeServiceChains, removed: [] };
  return { mode, ...planResync(existing.natChains, rules) };
}

/**
 * A sync after a change from `before` (what the node's last successful sync wrote) to `after`:
 * full or partial as `scope` says. `existing` is what the node has now, read when the sync
 * sweeps stale chains (see sweepsStaleChains); undefined skips the sweep. `existing6`: the same
 * for the node's ip6 tables (dual-stack). Pure.
 */
export function planChangeSync(before: Topology, after: Topology, node: string, scope: SyncScope, existing: ProxyExisting | undefined, existing6?: ProxyExisting): ProxySync {
  return withIPv6(planFamilyChangeSync(before, after, node, scope, existing), after, node, existing6);
}

/**
 * The IPv6 proxier's sync beside the IPv4 one (dual-stack, docs/dualstack.md): kube-proxy runs one
 * proxier per family over the same Services; here the same writers run over the topology's IPv6
 * view. After `up` each of its syncs is a full rewrite of kube-proxy's own ip6 chains; with
 * `existing6` (the ip6 tables' chains as ip6tables-save or `nft list chains ip6` list them) the
 * stale per-service chains are flushed and deleted in the same restore, as the IPv4 proxier
 * does; undefined skips that sweep (largeClusterMode between sweeps).
 */
function withIPv6(sync: ProxySync, t: Topology, node: string, existing6: ProxyExisting | 'fresh' | undefined): ProxySync {
  const v6 = ipv6View(t);
  if (!v6) return sync;
  if (t.kubeProxy.mode === 'nftables') {
    const nft = planNftSync(existing6 === 'fresh' || !existing6 ? NOTHING_YET.nft : existing6.nft, nftablesRules(v6, node));
    return { ...sync, payload6: nft.payload, added6: nft.added, removed6: nft.removed };
  }
  const rules = kubeProxyRules(v6, node);
  if (existing6 === 'fresh') return { ...sync, payload6: initialRestore(rules), added6: rules.activeServiceChains, removed6: [] };
  const re = planResync(existing6?.natChains, rules);
  return { ...sync, payload6: re.payload, added6: re.added, removed6: re.removed };
}

function planFamilyChangeSync(before: Topology, after: Topology, node: string, scope: SyncScope, existing: ProxyExisting | undefined): ProxySync {
  const mode = after.kubeProxy.mode;
  if (scope.full) return planFamilySync(after, node, existing ?? NOTHING_YET);
  const writeService = (key: string) => scope.services.has(key);
  // Of the last sync only what kube-proxy remembers is needed: the chains in use, the map elements.
  const remembered = { writeService: () => false };
  if (mode === 'nftables') {
    return { mode, ...planNftPartialSync(existing?.nft ?? NOTHING_YET.nft, nftablesRules(before, node, remembered), nftablesRules(after, node, { writeService })) };
  }
  return { mode, ...planResync(existing?.natChains, kubeProxyRules(after, node, { writeService }), kubeProxyRules(before, node, remembered).activeServiceChains) };
}
