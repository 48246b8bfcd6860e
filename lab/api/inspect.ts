import type { ConntrackEntry } from '../kernel/conntrack.js';
import { runAttached } from '../kernel/exec.js';
import { readConntrack, readNftText, readRules } from '../kernel/readers.js';
import { rulesHeader } from '../plan/kube-proxy/version.js';
import type { ProxyMode, Topology } from '../topology/schema.js';
import { hostNamespace, runningLab } from './running.js';

/**
 * kube-proxy's rules on a node under a header naming the kube-proxy version and mode: as
 * iptables-save prints them (nat table by default), or in nftables mode the kube-proxy table
 * as nft prints it (`table` does not apply there: one table holds the nat and filter chains).
 */
export async function rules(lab: string, host: string, table = 'nat', counters = false): Promise<{ mode: ProxyMode; text: string }> {
  const running = runningLab(lab);
  const ns = hostNamespace(running, host);
  const mode = running.topology.kubeProxy.mode;
  const kind = hostKind(running.topology, host);
  if (kind !== 'node') {
    // kube-proxy runs on nodes only: show the namespace's own tables, and say whose they are.
    const own = await readRules(ns, { table, counters, allowFailure: false });
    return { mode, text: `# ${kind} ${host} of lab ${lab}: not a node, so kube-proxy wrote no rules here (its namespace's own iptables-save -t ${table})\n${own}` };
  }
  const text = mode === 'nftables' ? await readNftText(ns, { allowFailure: false }) : await readRules(ns, { table, counters, allowFailure: false });
  return { mode, text: `${rulesHeader(mode, lab, host)}\n${text}` };
}

/** What a host of the lab is: kube-proxy's rules live only on nodes. */
function hostKind(t: Topology, host: string): 'node' | 'pod' | 'client' | 'router' {
  if (t.nodes.some((n) => n.name === host)) return 'node';
  if (t.pods.some((p) => p.name === host)) return 'pod';
  return t.clients.some((c) => c.name === host) ? 'client' : 'router';
}

export async function conntrack(lab: string, host: string): Promise<ConntrackEntry[]> {
  return readConntrack(hostNamespace(runningLab(lab), host));
}

/** Run a command inside a host's namespace, attached to this terminal; resolves to its exit code. */
export async function execIn(lab: string, host: string, command: string[]): Promise<number> {
  const ns = hostNamespace(runningLab(lab), host);
  return runAttached('ip', ['netns', 'exec', ns, ...command]);
}
