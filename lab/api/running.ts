import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';
import { applyPodChanges } from '../plan/scale.js';
import { labDir, readState, type LabState } from '../state/store.js';
import { loadTopology, type LoadedTopology } from '../topology/load.js';
import type { Topology } from '../topology/schema.js';

/** A lab that is up: its state and the topology it was built from (with the same overrides). */
export interface RunningLab {
  /** The lab as it runs now: the file, plus the pods `lab scale` / `kill` / `revive` changed. */
  topology: Topology;
  /** Absolute path of the topology file. */
  path: string;
  state: LabState;
  /** The topology as its file (and --set overrides) describe it, before run-time pod changes. */
  fileTopology: Topology;
}

export function runningLab(lab: string): RunningLab {
  const state = readState(lab);
  if (!state || state.phase !== 'up') {
    throw new LabError(
      state ? `lab "${lab}" did not finish coming up: run "lab down ${lab}" and "lab up" again` : `lab "${lab}" is not up: run "lab up ${lab}" first`,
      ExitCode.labState,
    );
  }
  const { topology, path } = validatedTopology(state);
  return { topology: applyPodChanges(topology, state.podChanges), fileTopology: topology, path, state };
}

/**
 * The lab's topology as validated when it was last read, kept in the lab's folder with what it
 * was read from: the file (its identity, size and time of change), the overrides and the
 * lab's own schema code. While none of those changed it is not parsed and validated again: at
 * 1000 services that is most of a `lab scale`. Any change, or an unreadable cache, reads the file.
 */
interface TopologyCache {
  key: string;
  topology: Topology;
  path: string;
}

const cacheFile = (lab: string) => join(labDir(lab), 'topology.json');
/** The lab's schema code (compiled; the module itself when run from source, as the tests do). */
const codeTime = () => {
  for (const url of [new URL('../topology/schema.js', import.meta.url), new URL(import.meta.url)]) {
    try {
      return statSync(url).mtimeMs;
    } catch {
      /* next */
    }
  }
  return undefined;
};

function cacheKey(path: string, overrides: Record<string, string>): string | undefined {
  try {
    const f = statSync(path);
    return JSON.stringify([path, f.dev, f.ino, f.size, f.mtimeMs, f.ctimeMs, overrides, codeTime()]);
  } catch {
    return undefined;
  }
}

function validatedTopology(state: LabState): { topology: Topology; path: string } {
  const key = cacheKey(state.topologyPath, state.overrides);
  try {
    const cached = JSON.parse(readFileSync(cacheFile(state.lab), 'utf8')) as TopologyCache;
    if (key !== undefined && cached.key === key) return cached;
  } catch {
    /* no cache yet, or a damaged one: read the file */
  }
  const loaded = loadTopology(state.topologyPath, state.overrides);
  rememberTopology(state.lab, loaded, state.overrides);
  return loaded;
}

/** Keep a validated topology for the next commands on this lab (`up` calls this once the lab is up). */
export function rememberTopology(lab: string, loaded: LoadedTopology, overrides: Record<string, string>): void {
  const key = cacheKey(loaded.path, overrides);
  if (key === undefined) return;
  const file = cacheFile(lab);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify({ key, topology: loaded.topology, path: loaded.path } satisfies TopologyCache));
    renameSync(tmp, file);
  } catch {
    /* a cache only: the next command reads the file */
  }
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
