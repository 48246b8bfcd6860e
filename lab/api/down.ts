import { rmSync } from 'node:fs';
import { deleteNamespaces, listNamespaces, markedNamespaces, namespaceMarker } from '../kernel/netns.js';
import { stopProcesses } from '../kernel/processes.js';
import { listStates, readState, removeState } from '../state/store.js';
import { LAB_MARKER_PREFIX } from '../topology/names.js';
import { ourProcesses } from './workloads.js';

export interface DownResult {
  lab: string;
  namespaces: string[];
  processes: number[];
}

/**
 * Remove a lab: its own processes (by pid), its namespaces, its files.
 * Idempotent, and works without a state file: namespaces are then found by the
 * lab's name prefix and confirmed by the ownership marker on their loopback.
 */
export async function down(lab: string): Promise<DownResult> {
  const state = readState(lab);
  const existing = await listNamespaces();
  const fromState = (state?.namespaces ?? []).filter((ns) => existing.includes(ns));
  const otherLabs = new Set(listStates().filter((s) => s.lab !== lab).flatMap((s) => s.namespaces));
  const unrecorded = existing.filter((ns) => !fromState.includes(ns) && !otherLabs.has(ns));
  const marked = await markedNamespaces(lab, unrecorded);
  const namespaces = [...fromState, ...marked];

  const pids = await ourProcesses(state, namespaces);
  await stopProcesses(pids);
  await deleteNamespaces(namespaces);
  for (const file of state?.files ?? []) rmSync(file, { recursive: true, force: true });
  removeState(lab);
  return { lab, namespaces, processes: pids };
}

/** Every lab this machine knows of: from state files, and from marked namespaces without one. */
export async function knownLabs(): Promise<string[]> {
  const labs = new Set(listStates().map((s) => s.lab));
  const marks = await Promise.all((await listNamespaces()).map(namespaceMarker));
  for (const mark of marks) if (mark) labs.add(mark.slice(LAB_MARKER_PREFIX.length));
  return [...labs].sort();
}
