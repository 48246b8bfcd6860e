import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PodChanges } from '../plan/scale.js';

/**
 * A lab's record of what it created, in /run (tmpfs: gone at reboot, like the namespaces).
 * Written before the kernel is touched (the namespaces it intends), then updated with
 * process ids, so `down` can undo even an `up` that died halfway.
 */
export const STATE_ROOT = process.env.LAB_STATE_DIR ?? '/run/kube-packet-lab';

export interface ProcessRecord {
  pod: string;
  ns: string;
  pid: number;
  /** /proc/<pid>/stat field 22: tells our process from a later one that reused the pid. */
  startTime: string;
  ports: number[];
}

export interface LabState {
  lab: string;
  topologyPath: string;
  overrides: Record<string, string>;
  createdAt: string;
  phase: 'creating' | 'up';
  namespaces: string[];
  processes: ProcessRecord[];
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

export function writeState(state: LabState): void {
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
