import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';
import { applyPodChanges } from '../plan/scale.js';
import { applyNodeChanges } from '../plan/node-changes.js';
import { LabStore, readState, type LabState } from '../state/store.js';
import { loadTopology } from '../topology/load.js';
import { namespaceName } from '../topology/names.js';
import { TOPOLOGIES_DIR } from '../topology/paths.js';
import type { Topology } from '../topology/schema.js';
import { log } from '../log.js';
import { cachedTopology, keptDespiteEdit, rememberTopology, savedTopology, topologyKey } from './topology-cache.js';

/** A lab that is up: its state and the topology it was built from (with the same overrides). */
export interface RunningLab {
  /** The lab as it runs now: the file, plus the pods `lab scale` / `kill` / `revive` changed and the nodes `lab node` changed. */
  topology: Topology;
  /** Absolute path of the topology file. */
  path: string;
  state: LabState;
  /** The topology as its file (and --set overrides) describe it, before run-time pod changes. */
  fileTopology: Topology;
  /** The lab's store for a command that changes it, knowing which reading of the file it works from. */
  store: () => LabStore;
}

/** How to bring a lab of this name up: `lab up <name>` runs only when a scenario has that name. */
export function upCommand(lab: string): string {
  return existsSync(join(TOPOLOGIES_DIR, `${lab}.yaml`)) ? `lab up ${lab}` : `lab up <scenario> --name ${lab}`;
}

export function runningLab(lab: string): RunningLab {
  const state = readState(lab);
  if (!state || state.phase !== 'up') {
    throw new LabError(
      state ? `lab "${lab}" did not finish coming up: run "lab down ${lab}" and "${upCommand(lab)}" again` : `lab "${lab}" is not up: run "${upCommand(lab)}" first`,
      ExitCode.labState,
    );
  }
  const { topology, path, key } = validatedTopology(state);
  return {
    topology: applyNodeChanges(applyPodChanges(topology, state.podChanges), state.nodeChanges),
    fileTopology: topology,
    path,
    state,
    // No key (the file cannot be stat'ed): always a full sync.
    store: () => new LabStore(state, { topologyKey: key ?? `unknown ${Date.now()}` }),
  };
}

function validatedTopology(state: LabState): { topology: Topology; path: string; key: string | undefined } {
  const key = topologyKey(state.topologyPath, state.overrides);
  const cached = cachedTopology(state.lab, key);
  if (cached) return { ...cached, key };
  // The file was edited since the lab read it: the lab runs what it read until `lab apply`.
  const kept = keptDespiteEdit(state.lab, state.topologyPath, state.overrides);
  if (kept) {
    log.debug({ lab: state.lab, file: state.topologyPath }, 'the topology file changed since the lab read it: working from the lab\'s own copy (lab apply takes the change)');
    return kept;
  }
  const loaded = loadTopology(state.topologyPath, state.overrides);
  if (loaded.topology.lab !== state.lab) return savedOrRefuse(state, loaded.topology.lab);
  rememberTopology(state.lab, loaded, state.overrides);
  return { topology: loaded.topology, path: loaded.path, key };
}

/**
 * The file was edited to name another lab: this lab goes on as it was validated when last read
 * (its namespaces, pods and Services), and its rules are not resynced from the edited file.
 */
function savedOrRefuse(state: LabState, fileLab: string): { topology: Topology; path: string; key: string | undefined } {
  const saved = savedTopology(state.lab);
  const why = `${state.topologyPath} now names lab "${fileLab}", not "${state.lab}"`;
  if (!saved) throw new LabError(`${why}, and lab ${state.lab}'s own copy of its topology is gone: put "lab: ${state.lab}" back, or "lab down ${state.lab}"`, ExitCode.labState);
  log.warn({ lab: state.lab, file: state.topologyPath }, `${why}: working from the topology lab ${state.lab} was built from`);
  return { ...saved, key: state.proxySync?.topologyKey };
}

/** The namespace of a host in a running lab, or a clear error naming the hosts there are. */
export function hostNamespace(running: RunningLab, host: string): string {
  const ns = namespaceName(running.state.lab, host);
  if (!running.state.namespaces.includes(ns)) {
    const hosts = running.state.namespaces.map((n) => n.slice(running.state.lab.length + 1));
    throw new LabError(`lab "${running.state.lab}" has no host "${host}" (hosts: ${hosts.join(', ')})`, ExitCode.badInput);
  }
  return ns;
}
