import type { ConntrackEntry } from '../kernel/conntrack.js';
import { runAttached } from '../kernel/exec.js';
import { readAddresses, readConntrack, readRules } from '../kernel/readers.js';
import { listNamespaces } from '../kernel/netns.js';
import { isAlive, processStartTime } from '../kernel/processes.js';
import { ExitCode, LabError } from '../errors.js';
import { labDir, listStates, readState } from '../state/store.js';
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
  const states = lab ? [readState(lab) ?? notUp(lab)] : listStates();
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

function notUp(lab: string): never {
  throw new LabError(`lab "${lab}" is not up (no state in ${labDir(lab)}): lab up <scenario> --name ${lab} builds it`, ExitCode.labState);
}

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
