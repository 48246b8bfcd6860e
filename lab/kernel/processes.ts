import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { WORKLOAD_MARKER } from '../workload/marker.js';
import { NETNS_RUN_DIR, namespaceInodes, namespacesPids } from './netns.js';

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or undefined if the pid is gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after its closing ")".
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

export function processCmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** The state letter of /proc/<pid>/stat (R, S, D, T stopped, t traced, Z zombie…), or undefined if the pid is gone. */
export function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/** Running, and not a zombie waiting for a (possibly slow) reaper: /proc/<pid>/stat field 3. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Still the process the lab started: running, with the start time recorded (not a reused pid). */
export function isOurs(p: { pid: number; startTime: string }): boolean {
  return isAlive(p.pid) && processStartTime(p.pid) === p.startTime;
}

/**
 * Stop processes the lab started, by pid: SIGTERM, wait up to `graceMs`, then SIGKILL.
 * The caller has already checked each pid is ours (start time or command line).
 */
export async function stopProcesses(pids: number[], graceMs = 1500): Promise<void> {
  const live = pids.filter(isAlive);
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  const deadline = Date.now() + graceMs;
  let waiting = live.filter(isAlive);
  while (waiting.length > 0 && Date.now() < deadline) {
    await sleep(10);
    waiting = waiting.filter(isAlive);
  }
  for (const pid of waiting) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** The inode of a process's network namespace (/proc/<pid>/ns/net), or undefined if it is gone. */
function netnsInode(pid: number): number | undefined {
  try {
    const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A process the state records is the lab's only if it still is the one recorded (start time),
 * carries the workload marker, and lives in one of the lab's namespaces or in a namespace that
 * lost its name (its /run/netns file deleted while it ran): never in this command's namespace or
 * another named one. A hand-edited pid pointing at anything else is left alone.
 */
function isRecordedLabProcess(p: { pid: number; startTime: string }, labInodes: Set<number>): boolean {
  if (p.pid === process.pid || !isOurs(p) || !processCmdline(p.pid).includes(WORKLOAD_MARKER)) return false;
  const ns = netnsInode(p.pid);
  if (ns === undefined) return false;
  if (labInodes.has(ns)) return true;
  let named: string[] = [];
  try {
    named = readdirSync(NETNS_RUN_DIR);
  } catch {
    named = [];
  }
  const namedInodes = new Set(namespaceInodes(named).values());
  return ns !== netnsInode(process.pid) && !namedInodes.has(ns);
}

/**
 * Stop everything that runs for a lab, whoever started it: every process inside one of its
 * namespaces (workloads, a killed verify's tcpdumps, a learner's shell), and the lab's workload
 * processes it recorded (see isRecordedLabProcess) in case one lives outside them.
 * A process left inside would keep a deleted namespace, and its addresses, alive.
 */
export async function stopLabProcesses(namespaces: string[], recorded: readonly { pid: number; startTime: string }[] = []): Promise<number[]> {
  const pids = new Set(namespacesPids(namespaces).filter((pid) => pid !== process.pid));
  const labInodes = new Set(namespaceInodes(namespaces).values());
  for (const p of recorded) if (isRecordedLabProcess(p, labInodes)) pids.add(p.pid);
  await stopProcesses([...pids]);
  return [...pids].sort((a, b) => a - b);
}

/** The processes a process started, and theirs, from /proc/<pid>/task/<tid>/children. */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    let kids: number[] = [];
    try {
      kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      kids = [];
    }
    for (const k of kids) out.push(k, ...descendants(k));
  }
  return out;
}
