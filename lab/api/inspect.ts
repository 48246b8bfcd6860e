import type { ConntrackEntry } from '../kernel/conntrack.js';
import { runAttached } from '../kernel/exec.js';
import { readAddresses, readConntrack, readNftText, readRules } from '../kernel/readers.js';
import { listNamespaces } from '../kernel/netns.js';
import { isAlive, processStartTime } from '../kernel/processes.js';
import { listStates } from '../state/store.js';
import { rulesHeader } from '../plan/kube-proxy/version.js';
import type { ProxyMode } from '../topology/schema.js';
import { hostNamespace, runningLab } from './running.js';

export interface LabStatus {
  lab: string;
  phase: string;
  topology: string;
  createdAt: string;
  namespaces: { ns: string; present: boolean; addresses: { ifname: string; cidr: string }[] }[];
  workloads: { pod: string; pid: number; ports: number[]; running: boolean }[];
}

/** Every lab with a state file: namespaces (present or not), their IPv4 addresses, workloads. */
export async function status(lab?: string): Promise<LabStatus[]> {
  const existing = new Set(await listNamespaces());
  const states = listStates().filter((s) => !lab || s.lab === lab);
  return Promise.all(
    states.map(async (s) => ({
      lab: s.lab,
      phase: s.phase,
      topology: s.topologyPath,
      createdAt: s.createdAt,
      namespaces: await Promise.all(
        s.namespaces.map(async (ns) => {
          const present = existing.has(ns);
          return { ns, present, addresses: present ? await readAddresses(ns) : [] };
        }),
      ),
      workloads: s.processes.map((p) => ({ pod: p.pod, pid: p.pid, ports: p.ports, running: isAlive(p.pid) && processStartTime(p.pid) === p.startTime })),
    })),
  );
}

/**
 * kube-proxy's rules on a node under a header naming the kube-proxy version and mode: as
 * iptables-save prints them (nat table by default), or in nftables mode the kube-proxy table
 * as nft prints it (`table` does not apply there: one table holds the nat and filter chains).
 */
export async function rules(lab: string, host: string, table = 'nat', counters = false): Promise<{ mode: ProxyMode; text: string }> {
  const running = runningLab(lab);
  const ns = hostNamespace(running, host);
  const mode = running.topology.kubeProxy.mode;
  const text = mode === 'nftables' ? await readNftText(ns, { allowFailure: false }) : await readRules(ns, { table, counters, allowFailure: false });
  return { mode, text: `${rulesHeader(mode, lab, host)}\n${text}` };
}

export async function conntrack(lab: string, host: string): Promise<ConntrackEntry[]> {
  return readConntrack(hostNamespace(runningLab(lab), host));
}

/** Run a command inside a host's namespace, attached to this terminal; resolves to its exit code. */
export async function execIn(lab: string, host: string, command: string[]): Promise<number> {
  const ns = hostNamespace(runningLab(lab), host);
  return runAttached('ip', ['netns', 'exec', ns, ...command]);
}
