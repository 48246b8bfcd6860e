import { listNamespaces } from '../kernel/netns.js';
import { isOurs } from '../kernel/processes.js';
import { readAddresses } from '../kernel/readers.js';
import { listStates } from '../state/store.js';

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
      workloads: s.processes.map((p) => ({ pod: p.pod, pid: p.pid, ports: p.ports, running: !p.stopped && isOurs(p) })),
    })),
  );
}

