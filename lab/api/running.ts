import { ExitCode, LabError } from '../errors.js';
import { applyPodChanges } from '../plan/scale.js';
import { readState, type LabState } from '../state/store.js';
import { loadTopology, type LoadedTopology } from '../topology/load.js';

/** A lab that is up: its state and the topology it was built from (with the same overrides). */
export interface RunningLab extends LoadedTopology {
  state: LabState;
  /** The topology as its file (and --set overrides) describe it, before run-time pod changes. */
  fileTopology: LoadedTopology['topology'];
}

export function runningLab(lab: string): RunningLab {
  const state = readState(lab);
  if (!state || state.phase !== 'up') {
    throw new LabError(
      state ? `lab "${lab}" did not finish coming up: run "lab down ${lab}" and "lab up" again` : `lab "${lab}" is not up: run "lab up ${lab}" first`,
      ExitCode.labState,
    );
  }
  const loaded = loadTopology(state.topologyPath, state.overrides);
  // The lab as it runs now: the file, plus the pods `lab scale` / `kill` / `revive` changed.
  return { ...loaded, topology: applyPodChanges(loaded.topology, state.podChanges), fileTopology: loaded.topology, state };
}

/** The namespace of a host in a running lab, or a clear error naming the hosts there are. */
export function hostNamespace(running: RunningLab, host: string): string {
  const ns = `${running.state.lab}-${host}`;
  if (!running.state.namespaces.includes(ns)) {
    const hosts = running.state.namespaces.map((n) => n.slice(running.state.lab.length + 1));
    throw new LabError(`lab "${running.state.lab}" has no host "${host}" (hosts: ${hosts.join(', ')})`, ExitCode.badInput);
  }
  return ns;
}
