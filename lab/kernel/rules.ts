import type { NftExisting } from '../plan/kube-proxy/nftables.js';
import { parseSave } from '../plan/kube-proxy/rules.js';
import type { ProxyExisting } from '../plan/kube-proxy/sync.js';
import type { ProxyMode } from '../topology/schema.js';
import { runIn } from './exec.js';
import { readNftObjects } from './readers.js';

/** The chains of a namespace's nat table, as iptables-save lists them (built-in ones too). */
export async function natChains(ns: string): Promise<string[]> {
  const { stdout } = await runIn(ns, 'iptables-save', ['-t', 'nat']);
  return parseSave(stdout).chains.get('nat') ?? [];
}

export async function nftExisting(ns: string): Promise<NftExisting> {
  const objects = await readNftObjects(ns);
  return {
    chains: objects.flatMap((o) => (o.chain ? [o.chain.name] : [])),
    sets: objects.flatMap((o) => (o.set ? [o.set.name] : [])),
  };
}

/** What kube-proxy reads before a sync: the chains (and, in nftables mode, sets) the node has. */
export async function proxyExisting(ns: string, mode: ProxyMode): Promise<ProxyExisting> {
  if (mode === 'nftables') return { natChains: [], nft: await nftExisting(ns) };
  return { natChains: await natChains(ns), nft: { chains: [], sets: [] } };
}

/**
 * Apply one ruleset payload atomically, as kube-proxy applies each sync. `fresh`: the node's
 * tables are new and empty, so iptables-restore may replace them rather than merge (--noflush).
 */
export async function applyProxyRules(ns: string, mode: ProxyMode, payload: string, opts: { fresh?: boolean } = {}): Promise<void> {
  // Thousands of Services take iptables-restore (nf_tables backend) well past the usual 30 s on a busy machine.
  const timeoutMs = 300_000;
  if (mode === 'nftables') await runIn(ns, 'nft', ['-f', '-'], { input: payload, timeoutMs });
  else await runIn(ns, 'iptables-restore', opts.fresh ? [] : ['--noflush'], { input: payload, timeoutMs });
}
