import type { ProxyMode, Topology } from '../../topology/schema.js';
import { initialRestore, kubeProxyRules } from './iptables.js';
import { nftablesRules, planNftSync, type NftExisting } from './nftables.js';
import { planResync } from './resync.js';

/**
 * The one seam between a topology and a node's kube-proxy rules, whatever the proxy mode:
 * what the node has now in, one payload for one atomic call out (iptables-restore --noflush,
 * or nft -f). `up` and every endpoint change (scale, kill, revive) go through here. Pure.
 */
export interface ProxySync {
  mode: ProxyMode;
  payload: string;
  /** Per-service chains created by this sync (a new endpoint's KUBE-SEP / endpoint- chain…). */
  added: string[];
  /** Per-service chains flushed and deleted by this sync. */
  removed: string[];
}

/** What a node has now: nat chain names (iptables mode), or the table's chains and sets (nftables mode). */
export interface ProxyExisting {
  natChains: string[];
  nft: NftExisting;
}

export const NOTHING_YET: ProxyExisting = { natChains: [], nft: { chains: [], sets: [] } };

export function planProxySync(t: Topology, node: string, existing: ProxyExisting | 'fresh'): ProxySync {
  const mode = t.kubeProxy.mode;
  if (mode === 'nftables') return { mode, ...planNftSync(existing === 'fresh' ? NOTHING_YET.nft : existing.nft, nftablesRules(t, node)) };
  const rules = kubeProxyRules(t, node);
  // A fresh node also gets the jumps from the built-in chains and the canary chains.
  if (existing === 'fresh') return { mode, payload: initialRestore(rules), added: rules.nat.chains.filter((c) => /^KUBE-(SVC|SVL|EXT|FW|SEP)-/.test(c)), removed: [] };
  return { mode, ...planResync(existing.natChains, rules) };
}
