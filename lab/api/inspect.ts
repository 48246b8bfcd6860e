import { execa } from 'execa';
import { readConntrack, type ConntrackEntry } from '../kernel/conntrack.js';
import { runIn } from '../kernel/exec.js';
import { listNamespaces } from '../kernel/netns.js';
import { isAlive, processStartTime } from '../kernel/processes.js';
import { listStates } from '../state/store.js';
import { NFT_TABLE } from '../plan/kube-proxy/nftables.js';
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
  const { stdout } =
    mode === 'nftables'
      ? await runIn(ns, 'nft', ['list', 'table', 'ip', NFT_TABLE])
      : await runIn(ns, 'iptables-save', ['-t', table, ...(counters ? ['-c'] : [])]);
  return { mode, text: `${rulesHeader(mode, lab, host)}\n${stdout}` };
}

export async function conntrack(lab: string, host: string): Promise<ConntrackEntry[]> {
  return readConntrack(hostNamespace(runningLab(lab), host));
}

/** Run a command inside a host's namespace, attached to this terminal; resolves to its exit code. */
export async function execIn(lab: string, host: string, command: string[]): Promise<number> {
  const ns = hostNamespace(runningLab(lab), host);
  const result = await execa('ip', ['netns', 'exec', ns, ...command], { stdio: 'inherit', reject: false });
  return result.exitCode ?? 1;
}
