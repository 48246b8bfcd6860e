import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { labProcesses, namespaces, processStartTime, sh } from './helpers.js';

/**
 * What test/e2e/fault-injection.test.ts checks after each round, read from the kernel and /proc
 * (never from the lab's own code): which namespaces and processes belong to a lab, and whether
 * the things planted beside it are still there, untouched.
 */

const NETNS_DIR = '/run/netns';
export const STATE_ROOT = process.env.LAB_STATE_DIR ?? '/run/kube-packet-lab';
const MARKER_PREFIX = 'kube-packet-lab:';
const WORKLOAD_MARKER = '--kube-packet-lab-workload';

export const netnsInode = (ns: string): number => statSync(`${NETNS_DIR}/${ns}`).ino;

/** The ownership marker on a namespace's loopback (its alias), if any. */
export async function markerOf(ns: string): Promise<string | undefined> {
  return /\balias (\S+)/.exec(await sh('ip', ['-n', ns, 'link', 'show', 'lo']))?.[1];
}

const pids = () => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
const netOf = (pid: number | 'self') => {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined; // exited, or a zombie
  }
};
const argsOf = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
};

export interface FoundProcess {
  pid: number;
  args: string;
}

/** Processes whose network namespace is one of these (by inode, as `lab down` finds them). */
export function processesInNamespaces(names: string[]): FoundProcess[] {
  const inodes = new Set(names.flatMap((ns) => (existsSync(`${NETNS_DIR}/${ns}`) ? [`net:[${netnsInode(ns)}]`] : [])));
  return pids()
    .filter((pid) => inodes.has(netOf(pid) ?? ''))
    .map((pid) => ({ pid, args: argsOf(pid) }));
}

/**
 * Workload processes in this test's own network namespace: started by an `up` and never placed in
 * a lab (an up SIGKILLed before it placed one leaves it, and it must exit on its own).
 */
export function unplacedWorkloads(): FoundProcess[] {
  const here = netOf('self');
  return pids()
    .filter((pid) => pid !== process.pid && netOf(pid) === here && argsOf(pid).includes(WORKLOAD_MARKER))
    .map((pid) => ({ pid, args: argsOf(pid) }));
}

/** Everything a lab has on the machine: namespaces named like its own or carrying its marker (but not the planted ones), and their processes. */
export async function labFootprint(lab: string, planted: readonly string[]): Promise<{ namespaces: string[]; processes: FoundProcess[] }> {
  const found: string[] = [];
  for (const ns of await namespaces()) {
    if (planted.includes(ns)) continue;
    if (ns.startsWith(`${lab}-`) || (await markerOf(ns)) === `${MARKER_PREFIX}${lab}`) found.push(ns);
  }
  const inside = processesInNamespaces(found);
  const outside = (await labProcesses(lab)).map((l) => Number(l.trim().split(/\s+/)[0])).filter((pid) => !inside.some((p) => p.pid === pid));
  return { namespaces: found, processes: [...inside, ...outside.map((pid) => ({ pid, args: argsOf(pid) }))] };
}

/** The pids a lab's state records: its workload process, each pod's, its daemons. */
export function recordedPids(state: { workloadHost?: { pid: number }; processes?: { pid: number }[]; daemons?: { pid: number }[] }): number[] {
  return [state.workloadHost?.pid, ...(state.processes ?? []).map((p) => p.pid), ...(state.daemons ?? []).map((d) => d.pid)].filter((p): p is number => typeof p === 'number');
}

export interface PlantedNamespace {
  name: string;
  inode: number;
  marker: string | undefined;
}
export interface PlantedProcess {
  pid: number;
  startTime: string;
  where: string;
}

/** What became of the planted namespaces and processes: one line per one deleted, replaced, re-marked or killed. */
export async function plantedProblems(planted: { namespaces: PlantedNamespace[]; processes: PlantedProcess[] }): Promise<string[]> {
  const problems: string[] = [];
  for (const ns of planted.namespaces) {
    if (!existsSync(`${NETNS_DIR}/${ns.name}`)) problems.push(`the foreign namespace ${ns.name} was deleted`);
    else if (netnsInode(ns.name) !== ns.inode) problems.push(`the foreign namespace ${ns.name} was deleted and made again`);
    else if ((await markerOf(ns.name)) !== ns.marker) problems.push(`the foreign namespace ${ns.name} now carries marker ${(await markerOf(ns.name)) ?? '(none)'}`);
  }
  for (const p of planted.processes) {
    if (!sameProcess(p)) problems.push(`the foreign sleep ${p.pid} (${p.where}) was killed`);
  }
  return problems;
}

/** The same process as planted, and not a zombie. */
function sameProcess(p: PlantedProcess): boolean {
  try {
    return processStartTime(p.pid) === p.startTime && !/\) [ZX] /.test(readFileSync(`/proc/${p.pid}/stat`, 'utf8'));
  } catch {
    return false; // gone
  }
}
