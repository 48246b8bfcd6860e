import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PodChanges } from '../plan/scale.js';

/**
 * A lab's record of what it created, in /run (tmpfs: gone at reboot, like the namespaces).
 * Written before the kernel is touched (the namespaces it intends), then updated with
 * process ids, so `down` can undo even an `up` that died halfway.
 */
export const STATE_ROOT = process.env.LAB_STATE_DIR ?? '/run/kube-packet-lab';

/** A process the lab started, as `down` finds it again: pid plus start time. */
export interface OwnedProcess {
  pid: number;
  /** /proc/<pid>/stat field 22: tells our process from a later one that reused the pid. */
  startTime: string;
}

/** A pod's workload: served by the lab's workload process (its pid), on these ports. */
export interface ProcessRecord extends OwnedProcess {
  pod: string;
  ns: string;
  ports: number[];
  /** Its sockets were closed (`lab kill`): the pod's workload is stopped, the process serves others. */
  stopped?: boolean;
}

/** The lab's one workload process, which serves every pod's sockets. */
export interface WorkloadHostRecord extends OwnedProcess {
  /** The lab namespace it was started in. */
  ns: string;
}

export interface LabState {
  lab: string;
  topologyPath: string;
  overrides: Record<string, string>;
  createdAt: string;
  phase: 'creating' | 'up';
  namespaces: string[];
  processes: ProcessRecord[];
  /** The workload process serving the pods' sockets, once started. */
  workloadHost?: WorkloadHostRecord;
  /** Files the lab wrote outside its state folder (per-namespace resolv.conf). */
  files: string[];
  /** Pods added, removed, killed or revived since `up` (lab scale / kill / revive). */
  podChanges?: PodChanges;
}

export const labDir = (lab: string) => join(STATE_ROOT, lab);
const stateFile = (lab: string) => join(labDir(lab), 'state.json');

export function readState(lab: string): LabState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(lab), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

/** Every process this state says the lab started: the workload process and each pod's record. */
export function recordedProcesses(state: LabState): OwnedProcess[] {
  return [...(state.workloadHost ? [state.workloadHost] : []), ...state.processes];
}

/**
 * The one writer of a lab's state: every change goes through a method here, which saves it at
 * once (atomically), so what the kernel holds is recorded before or as it is created.
 */
export class LabStore {
  constructor(readonly state: LabState) {}

  /** Record a new lab's intent before anything exists. */
  static create(state: LabState): LabStore {
    writeState(state);
    return new LabStore(state);
  }

  get lab(): string {
    return this.state.lab;
  }

  /** Namespaces and files about to be created: recorded first, so a crash leaves nothing `down` misses. */
  addResources(namespaces: string[], files: string[]): void {
    this.state.namespaces.push(...namespaces.filter((n) => !this.state.namespaces.includes(n)));
    this.state.files.push(...files.filter((f) => !this.state.files.includes(f)));
    this.save();
  }

  setWorkloadHost(host: WorkloadHostRecord): void {
    this.state.workloadHost = host;
    this.save();
  }

  /** Pods now served (replacing any older record of the same pod). */
  recordWorkloads(records: ProcessRecord[]): void {
    const pods = new Set(records.map((r) => r.pod));
    this.state.processes = [...this.state.processes.filter((p) => !pods.has(p.pod)), ...records];
    this.save();
  }

  markStopped(pod: string): void {
    this.state.processes = this.state.processes.map((p) => (p.pod === pod ? { ...p, stopped: true } : p));
    this.save();
  }

  /** Pods deleted: their records, namespaces and files. */
  forgetPods(pods: string[], namespaces: string[], files: string[]): void {
    this.state.namespaces = this.state.namespaces.filter((ns) => !namespaces.includes(ns));
    this.state.processes = this.state.processes.filter((p) => !pods.includes(p.pod));
    this.state.files = this.state.files.filter((f) => !files.includes(f));
    this.save();
  }

  setPodChanges(changes: PodChanges): void {
    this.state.podChanges = changes;
    this.save();
  }

  markUp(): void {
    this.state.phase = 'up';
    this.save();
  }

  save(): void {
    writeState(this.state);
  }
}

function writeState(state: LabState): void {
  mkdirSync(labDir(state.lab), { recursive: true });
  const tmp = `${stateFile(state.lab)}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, stateFile(state.lab));
}

export function removeState(lab: string): void {
  rmSync(labDir(lab), { recursive: true, force: true });
}

export function listStates(): LabState[] {
  let names: string[] = [];
  try {
    names = readdirSync(STATE_ROOT);
  } catch {
    return [];
  }
  return names.map(readState).filter((s): s is LabState => s !== undefined);
}
