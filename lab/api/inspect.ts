import type { ConntrackEntry } from '../kernel/conntrack.js';
import { runAttached } from '../kernel/exec.js';
import { readConntrack, readRules } from '../kernel/readers.js';
import { hostNamespace, runningLab } from './running.js';

/** kube-proxy's rules on a node, as iptables-save prints them (nat table by default). */
export async function rules(lab: string, host: string, table = 'nat', counters = false): Promise<string> {
  const ns = hostNamespace(runningLab(lab), host);
  return readRules(ns, { table, counters, allowFailure: false });
}

export async function conntrack(lab: string, host: string): Promise<ConntrackEntry[]> {
  return readConntrack(hostNamespace(runningLab(lab), host));
}

/** Run a command inside a host's namespace, attached to this terminal; resolves to its exit code. */
export async function execIn(lab: string, host: string, command: string[]): Promise<number> {
  const ns = hostNamespace(runningLab(lab), host);
  return runAttached('ip', ['netns', 'exec', ns, ...command]);
}
