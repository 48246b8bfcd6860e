import { ExitCode, LabError } from '../errors.js';
import type { ConntrackEntry } from '../kernel/conntrack.js';
import { runAttached } from '../kernel/exec.js';
import { readConntrack, readNftText, readRules } from '../kernel/readers.js';
import { rulesHeader } from '../plan/kube-proxy/version.js';
import type { ProxyMode, Topology } from '../topology/schema.js';
import { hostNamespace, runningLab } from './running.js';
import { isDualStack } from '../topology/family.js';

/**
 * kube-proxy's rules on a node under a header naming the kube-proxy version and mode: as
 * iptables-save prints them (nat table unless `table` says otherwise), or in nftables mode the
 * kube-proxy table as nft prints it. A table or counters asked of an nftables lab are refused:
 * one table holds the nat and filter chains there, and kube-proxy's nft rules carry no counters.
 */
export async function rules(lab: string, host: string, table?: string, counters = false): Promise<{ mode: ProxyMode; text: string }> {
  const running = runningLab(lab);
  const mode = running.topology.kubeProxy.mode;
  const ns = hostNamespace(running, host);
  const kind = hostKind(running.topology, host);
  if (kind !== 'node') {
    // kube-proxy runs on nodes only: show the namespace's own tables, and say whose they are.
    const own = await readRules(ns, { table: table ?? 'nat', counters, allowFailure: false });
    return { mode, text: `# ${kind} ${host} of lab ${lab}: not a node, so kube-proxy wrote no rules here (its namespace's own iptables-save -t ${table ?? 'nat'})\n${own}` };
  }
  if (mode === 'nftables') refuseIptablesOptions(lab, host, table, counters);
  const read = (ipv6: boolean) => (mode === 'nftables' ? readNftText(ns, { allowFailure: false, ipv6 }) : readRules(ns, { table: table ?? 'nat', counters, allowFailure: false, ipv6 }));
  const text = await read(false);
  // A dual-stack cluster: kube-proxy's IPv6 proxier's rules follow, the same chains in ip6tables or table ip6 kube-proxy.
  const six = isDualStack(running.topology) ? `\n# IPv6 (${mode === 'nftables' ? 'nft list table ip6 kube-proxy' : `ip6tables-save -t ${table ?? 'nat'}`})\n${await read(true)}` : '';
  return { mode, text: `${rulesHeader(mode, lab, host)}\n${text}${six}` };
}

/** What a host of the lab is: kube-proxy's rules live only on nodes. */
function hostKind(t: Topology, host: string): 'node' | 'pod' | 'client' | 'router' {
  if (t.nodes.some((n) => n.name === host)) return 'node';
  if (t.pods.some((p) => p.name === host)) return 'pod';
  return t.clients.some((c) => c.name === host) ? 'client' : 'router';
}

function refuseIptablesOptions(lab: string, host: string, table: string | undefined, counters: boolean): void {
  const problems: string[] = [];
  if (table !== undefined) problems.push(`-t ${table}: kube-proxy's nftables mode keeps its nat and filter chains in one table, ip kube-proxy, which "lab rules ${lab} ${host}" prints whole (each base chain names its type: nat or filter)`);
  if (counters) problems.push(`-c: kube-proxy's nftables rules carry no counters (kube-proxy writes none); "lab trace ${lab}" shows the rules a packet meets, and "lab conntrack ${lab} ${host}" the connections`);
  if (problems.length > 0) throw new LabError(`lab ${lab} runs kube-proxy in nftables mode:\n  ${problems.join('\n  ')}`, ExitCode.badInput);
}

export async function conntrack(lab: string, host: string): Promise<ConntrackEntry[]> {
  // conntrack -L without -f lists both families: a dual-stack lab's IPv6 connections come with the IPv4 ones.
  return readConntrack(hostNamespace(runningLab(lab), host));
}

/** The sources a node's conntrack sees that another node translated to: node addresses, and each pod CIDR's first address (flannel.1's). */
export function relayedSources(lab: string): Set<string> {
  const t = runningLab(lab).topology;
  return new Set(t.nodes.flatMap((n) => [n.address, n.podCIDR.split('/')[0]!]));
}

/** Run a command inside a host's namespace, attached to this terminal; resolves to its exit code. */
export async function execIn(lab: string, host: string, command: string[]): Promise<number> {
  const ns = hostNamespace(runningLab(lab), host);
  return runAttached('ip', ['netns', 'exec', ns, ...command]);
}
