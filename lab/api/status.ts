import { runIn } from '../kernel/exec.js';
import { listNamespaces } from '../kernel/netns.js';
import { isOurs } from '../kernel/processes.js';
import { listStates } from '../state/store.js';

export interface LabStatus {
  lab: string;
  phase: string;
  topology: string;
  createdAt: string;
  namespaces: { ns: string; present: boolean; addresses: { ifname: string; cidr: string }[] }[];
  workloads: { pod: string; pid: number; ports: number[]; running: boolean }[];
}

interface IpAddrJson {
  ifname: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
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
          const { stdout } = present ? await runIn(ns, 'ip', ['-j', '-4', 'addr', 'show'], { allowFailure: true }) : { stdout: '[]' };
          let links: IpAddrJson[] = [];
          try {
            links = JSON.parse(stdout || '[]') as IpAddrJson[];
          } catch {
            links = [];
          }
          const addresses = links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet' && l.ifname !== 'lo').map((a) => ({ ifname: l.ifname, cidr: `${a.local}/${a.prefixlen}` })));
          return { ns, present, addresses };
        }),
      ),
      workloads: s.processes.map((p) => ({ pod: p.pod, pid: p.pid, ports: p.ports, running: !p.stopped && isOurs(p) })),
    })),
  );
}

