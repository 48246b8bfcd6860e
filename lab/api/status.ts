import { listNamespaces } from '../kernel/netns.js';
import { isOurs } from '../kernel/processes.js';
import { readAddresses } from '../kernel/readers.js';
import { ExitCode, LabError } from '../errors.js';
import { labDir, listStates, readState } from '../state/store.js';
import { mapLimit, NAMESPACE_CONCURRENCY } from '../util/pool.js';
import { upCommand } from './running.js';
import { daemonSessions, type DaemonStatus } from './pod-network-daemons.js';

export interface LabStatus {
  lab: string;
  phase: string;
  topology: string;
  createdAt: string;
  namespaces: { ns: string; present: boolean; addresses: { ifname: string; cidr: string }[] }[];
  /** terminating: `lab kill --terminating` marked the pod as being deleted (it keeps serving). */
  workloads: { pod: string; pid: number; ports: number[]; running: boolean; terminating?: boolean }[];
  /** The pod network's daemons (bgp: each BIRD) and the state of each of their BGP sessions. */
  daemons: DaemonStatus[];
}

/** Every lab with a state file: namespaces (present or not), their IPv4 addresses, workloads, daemons and their sessions. */
export async function status(lab?: string): Promise<LabStatus[]> {
  const existing = new Set(await listNamespaces());
  const states = lab ? [readState(lab) ?? notUp(lab)] : listStates();
  return Promise.all(
    states.map(async (s) => ({
      lab: s.lab,
      phase: s.phase,
      topology: s.topologyPath,
      createdAt: s.createdAt,
      namespaces: await mapLimit(s.namespaces, NAMESPACE_CONCURRENCY, async (ns) => {
        const present = existing.has(ns);
        return { ns, present, addresses: present ? await readAddresses(ns) : [] };
      }),
      workloads: s.processes.map((p) => ({ pod: p.pod, pid: p.pid, ports: p.ports, running: !p.stopped && isOurs(p), ...(s.podChanges?.terminating?.[p.pod] ? { terminating: true } : {}) })),
      daemons: await daemonSessions(s),
    })),
  );
}


function notUp(lab: string): never {
  throw new LabError(`lab "${lab}" is not up (no state in ${labDir(lab)}): ${upCommand(lab)} builds it`, ExitCode.labState);
}
