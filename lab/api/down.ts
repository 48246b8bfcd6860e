import { readdirSync, rmSync } from 'node:fs';
import { ourNamespaceFile } from '../kernel/apply.js';
import { deleteNamespaces, listNamespaces, markedNamespaces, namespaceMarkers, ownedNamespaces } from '../kernel/netns.js';
import { stopLabProcesses } from '../kernel/processes.js';
import { sweepInstances } from '../kernel/drop-trace.js';
import { log } from '../log.js';
import { NETNS_ETC, netnsEtcDir } from '../plan/dns.js';
import { withLabLock } from '../state/lock.js';
import { inspectState, labDir, labFolders, listStates, recordedProcesses, STATE_ROOT } from '../state/store.js';
import { isLabName, LAB_MARKER_PREFIX } from '../topology/names.js';
import { insideRoot } from '../util/paths.js';

export interface DownResult {
  lab: string;
  namespaces: string[];
  processes: number[];
  /** Why the state file could not be used, when it could not (the markers were then enough). */
  stateProblem?: string;
  /** Paths the lab refused to delete because they lie outside its own folders. */
  refused: string[];
  /** Recorded namespaces left in place: another lab's marker, or no proof they are this lab's. */
  leftAlone: string[];
  /** What could not be done to the state folder (a full or read-only state root): one line each. */
  warnings: string[];
}

/**
 * Remove a lab: every process inside its namespaces, its namespaces, its files.
 * Idempotent, and works without a state file (or with a damaged one): namespaces are then
 * found by the lab's name prefix and confirmed by the ownership marker on their loopback.
 * Works on a full or read-only state root too: the kernel's objects go first, and what cannot
 * be written or removed in the state root becomes a warning.
 */
export async function down(lab: string): Promise<DownResult> {
  labDir(lab); // refuses a name that is not a lab name before anything is touched
  const warnings: string[] = [];
  return withLabLock(lab, 'down', () => removeLab(lab, warnings), { onStateRootError: (w) => warnings.push(w) });
}

async function removeLab(lab: string, warnings: string[]): Promise<DownResult> {
  const { state, problem } = inspectState(lab);
  if (problem) log.warn({ lab }, problem);
  const existing = await listNamespaces();
  const fromState = (state?.namespaces ?? []).filter((ns) => existing.includes(ns));
  const otherLabs = new Set(listStates().filter((s) => s.lab !== lab).flatMap((s) => s.namespaces));
  const unrecorded = existing.filter((ns) => !fromState.includes(ns) && !otherLabs.has(ns));
  const marked = await markedNamespaces(lab, unrecorded);
  // A state file names namespaces, it does not prove them: each is checked (marker or recorded identity).
  const owned = await ownedNamespaces(lab, fromState, state?.namespaceIds);
  const leftAlone = fromState.filter((ns) => !owned.includes(ns));
  const namespaces = [...owned, ...marked];

  // Processes first: one left inside would keep its namespace (and addresses) alive after `netns del`.
  const processes = await stopLabProcesses(namespaces, state ? recordedProcesses(state) : []);
  await deleteNamespaces(namespaces);

  // The /etc/netns folders of its namespaces: those the state lists, and any holding only the lab's own files.
  const refused: string[] = [];
  const dirs = new Set([...(state?.files ?? []).filter((d) => !leftAlone.some((ns) => d === netnsEtcDir(ns))), ...namespaces.map(netnsEtcDir).filter(holdsOnlyOurFiles)]);
  for (const dir of dirs) removeInside(NETNS_ETC, dir, refused);
  // A SIGKILLed trace's tracefs instance (recorded in the state folder) goes with the lab.
  sweepInstances(labDir(lab), false);
  // The kernel's objects are gone; a state folder that cannot be removed (read-only root) is only reported.
  try {
    removeInside(STATE_ROOT, labDir(lab), refused);
  } catch (err) {
    warnings.push(`could not remove ${labDir(lab)} (${(err as NodeJS.ErrnoException).code ?? String(err)}): run "lab down ${lab}" again once the state root is writable`);
  }
  return { lab, namespaces, processes, refused, leftAlone, warnings, ...(problem ? { stateProblem: problem } : {}) };
}

/** rm -rf, only for a path that resolves (symlinks and ".." included) to inside root. */
function removeInside(root: string, path: string, refused: string[]): void {
  if (!insideRoot(root, path)) {
    refused.push(path);
    log.warn({ path, root }, 'refused to delete a path outside the lab folders');
    return;
  }
  rmSync(path, { recursive: true, force: true });
}

function holdsOnlyOurFiles(dir: string): boolean {
  try {
    const entries = readdirSync(dir);
    return entries.length > 0 && entries.every((e) => ourNamespaceFile(`${dir}/${e}`));
  } catch {
    return false;
  }
}

export interface KnownLabs {
  labs: string[];
  /** Namespaces whose marker names something that is not a lab name: left alone, and reported. */
  ignored: { ns: string; marker: string }[];
}

/** Every lab this machine knows of: from state folders, and from marked namespaces without one. */
export async function knownLabs(): Promise<KnownLabs> {
  const labs = new Set(labFolders());
  const ignored: KnownLabs['ignored'] = [];
  for (const [ns, mark] of await namespaceMarkers(await listNamespaces())) {
    if (!mark) continue;
    const name = mark.slice(LAB_MARKER_PREFIX.length);
    if (isLabName(name) && ns.startsWith(`${name}-`)) labs.add(name);
    else ignored.push({ ns, marker: mark });
  }
  return { labs: [...labs].sort(), ignored };
}
