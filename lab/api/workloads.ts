import { namespacesPids } from '../kernel/netns.js';
import { ExitCode, LabError } from '../errors.js';
import { isOurs, processCmdline, processState, stopProcesses } from '../kernel/processes.js';
import { controlWorkloads, startWorkloadHost } from '../kernel/workloads.js';
import type { WorkloadPlan } from '../plan/plan.js';
import { labDir, recordedProcesses, type LabState, type LabStore, type WorkloadHostRecord } from '../state/store.js';
import { namespaceName } from '../topology/names.js';
import { WORKLOAD_MARKER } from '../workload/marker.js';

/**
 * The processes that are the lab's own: those its state recorded whose start time still
 * matches (a reused pid is someone else's), and any process carrying the workload marker inside
 * one of the given namespaces (left by a crash before it was recorded). Only these are stopped.
 */
export async function ourProcesses(state: LabState | undefined, namespaces: string[]): Promise<number[]> {
  const pids = new Set<number>();
  for (const p of state ? recordedProcesses(state) : []) if (isOurs(p)) pids.add(p.pid);
  for (const pid of namespacesPids(namespaces)) if (processCmdline(pid).includes(WORKLOAD_MARKER)) pids.add(pid);
  return [...pids];
}

/** The lab's workload process if it still runs. */
export function runningHost(state: LabState): WorkloadHostRecord | undefined {
  return state.workloadHost && isOurs(state.workloadHost) ? state.workloadHost : undefined;
}

/** The way out for a lab whose workload process cannot serve. */
const wayOut = (lab: string) => `lab revive ${lab} <pod>, for each pod, serves it from a new one; lab down ${lab} and lab up again rebuild the lab`;

/**
 * Why the lab's workload process (which serves every pod) cannot serve now, or undefined: it
 * is gone, or stopped (SIGSTOP: its sockets still accept connections, but nothing answers).
 */
export function workloadHostTrouble(state: LabState): string | undefined {
  const host = state.workloadHost;
  if (!host || !state.processes.some((p) => !p.stopped)) return undefined;
  const what = `lab ${state.lab}'s workload process (pid ${host.pid}, serving every pod)`;
  if (!isOurs(host)) return `${what} is gone, so no pod answers: ${wayOut(state.lab)}`;
  const st = processState(host.pid);
  if (st === 'T' || st === 't') return `${what} is stopped (state ${st}, e.g. by SIGSTOP), so no pod answers: kill -CONT ${host.pid} resumes it; or ${wayOut(state.lab)}`;
  return undefined;
}

/** How long a live workload process may take to answer a ping before the lab calls it hung. */
const PING_MS = 2000;

/**
 * Fail fast, naming the workload process, before a verb waits on it: gone, stopped, or not
 * answering its control socket. Exit 5 (lab state).
 */
export async function requireWorkloadHost(state: LabState): Promise<void> {
  const trouble = workloadHostTrouble(state);
  if (trouble) throw new LabError(trouble, ExitCode.labState);
  if (!state.workloadHost || !state.processes.some((p) => !p.stopped)) return;
  try {
    await controlWorkloads(labDir(state.lab), { op: 'list' }, PING_MS);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new LabError(`lab ${state.lab}'s workload process (pid ${state.workloadHost.pid}) does not answer its control socket (${why}): ${wayOut(state.lab)}`, ExitCode.labState);
  }
}

/** A recorded workload process that is stopped makes every request to it wait: refuse at once. */
function refuseStopped(state: LabState): void {
  const trouble = workloadHostTrouble(state);
  if (trouble && state.workloadHost && isOurs(state.workloadHost)) throw new LabError(trouble, ExitCode.labState);
}

/** The lab's workload process: the running one, or a new one started in namespace `home`. */
export async function ensureWorkloadHost(store: LabStore, home: string): Promise<WorkloadHostRecord> {
  refuseStopped(store.state);
  const running = runningHost(store.state);
  if (running) return running;
  const host = { ns: home, ...(await startWorkloadHost(home, labDir(store.lab))) };
  store.setWorkloadHost(host);
  return host;
}

/** Open these pods' sockets in the lab's workload process (each in its own namespace) and record them. */
export async function startPodWorkloads(store: LabStore, workloads: WorkloadPlan[], host: WorkloadHostRecord): Promise<void> {
  if (workloads.length === 0) return;
  await controlWorkloads(labDir(store.lab), { op: 'open', pods: workloads });
  store.recordWorkloads(workloads.map((w) => ({ pod: w.pod, ns: w.ns, pid: host.pid, startTime: host.startTime, ports: w.ports })));
}

/**
 * Stop these pods' workloads: close their sockets and connections in the workload process (the
 * other pods keep being served), and stop any marker process inside their namespaces.
 * Returns the pid of the process that served them, if one did.
 */
export async function stopPodWorkloads(store: LabStore, pods: string[]): Promise<number[]> {
  refuseStopped(store.state);
  const host = runningHost(store.state);
  const served = host ? store.state.processes.filter((p) => pods.includes(p.pod) && !p.stopped && p.pid === host.pid) : [];
  if (host && served.length > 0) await controlWorkloads(labDir(store.lab), { op: 'close', pods });
  const strays = await ourProcesses(undefined, pods.map((p) => namespaceName(store.lab, p)));
  await stopProcesses(strays);
  return [...(served.length > 0 && host ? [host.pid] : []), ...strays];
}

/** A pod's workload is being served now: recorded, not stopped, and its process still ours. */
export function isServing(state: LabState, pod: string): boolean {
  const record = state.processes.find((p) => p.pod === pod);
  return !!record && !record.stopped && isOurs(record);
}
