import { spawn } from 'node:child_process';
import { readConntrack, type ConntrackEntry } from '../kernel/conntrack.js';
import { runIn } from '../kernel/exec.js';
import { hostNamespace, runningLab } from './running.js';

/** kube-proxy's rules on a node, as iptables-save prints them (nat table by default). */
export async function rules(lab: string, host: string, table = 'nat', counters = false): Promise<string> {
  const ns = hostNamespace(runningLab(lab), host);
  const { stdout } = await runIn(ns, 'iptables-save', ['-t', table, ...(counters ? ['-c'] : [])]);
  return stdout;
}

export async function conntrack(lab: string, host: string): Promise<ConntrackEntry[]> {
  return readConntrack(hostNamespace(runningLab(lab), host));
}

/** Run a command inside a host's namespace, attached to this terminal; resolves to its exit code. */
export async function execIn(lab: string, host: string, command: string[]): Promise<number> {
  const ns = hostNamespace(runningLab(lab), host);
  const child = spawn('ip', ['netns', 'exec', ns, ...command], { stdio: 'inherit' });
  return new Promise((resolve) => {
    child.on('error', () => resolve(1));
    child.on('close', (code) => resolve(code ?? 1));
  });
}
