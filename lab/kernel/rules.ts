import type { NftExisting } from '../plan/kube-proxy/nftables.js';
import { parseSave } from '../plan/kube-proxy/rules.js';
import type { ProxyExisting } from '../plan/kube-proxy/sync.js';
import type { ProxyMode } from '../topology/schema.js';
import type { IPFamily } from '../topology/family.js';
import { runIn } from './exec.js';

/** The chains of a namespace's nat table, as iptables-save lists them (built-in ones too). */
export async function natChains(ns: string): Promise<string[]> {
  const { stdout } = await runIn(ns, 'iptables-save', ['-t', 'nat']);
  return parseSave(stdout).chains.get('nat') ?? [];
}

/**
 * The kube-proxy table's chain and set names, as kube-proxy lists them before each sync
 * (`nft list chains`, `nft list sets`): names only, not the rules and map elements a listing
 * of the whole table would carry (at 1000 Services that listing costs more than the sync).
 */
export async function nftExisting(ns: string, family: 'ip' | 'ip6' = 'ip'): Promise<NftExisting> {
  const [chains, sets] = await Promise.all([nftNames(ns, 'chain', family), nftNames(ns, 'set', family)]);
  return { chains, sets };
}

async function nftNames(ns: string, kind: 'chain' | 'set', family: 'ip' | 'ip6'): Promise<string[]> {
  const { stdout, exitCode } = await runIn(ns, 'nft', ['-j', 'list', `${kind}s`, family], { allowFailure: true });
  if (exitCode !== 0) return [];
  try {
    const objects = (JSON.parse(stdout) as { nftables: Record<string, { table?: string; name?: string } | undefined>[] }).nftables;
    return objects.flatMap((o) => {
      const item = o[kind];
      return item?.table === 'kube-proxy' && item.name ? [item.name] : [];
    });
  } catch {
    return [];
  }
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
export async function applyProxyRules(ns: string, mode: ProxyMode, payload: string, opts: { fresh?: boolean; family?: IPFamily } = {}): Promise<void> {
  // Thousands of Services take iptables-restore (nf_tables backend) well past the usual 30 s on a busy machine.
  const timeoutMs = 300_000;
  if (mode === 'nftables') await runIn(ns, 'nft', ['-f', '-'], { input: payload, timeoutMs });
  // The IPv6 proxier of a dual-stack cluster writes the ip6 tables (same chain names) with ip6tables-restore.
  else await runIn(ns, opts.family === 'IPv6' ? 'ip6tables-restore' : 'iptables-restore', opts.fresh ? [] : ['--noflush'], { input: payload, timeoutMs });
}
