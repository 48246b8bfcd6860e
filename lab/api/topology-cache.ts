import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labDir } from '../state/store.js';
import { validationCode } from '../topology/prebuilt.js';
import type { Topology } from '../topology/schema.js';

/**
 * The lab's topology as validated when it was last read, kept in the lab's folder with what it
 * was read from: the file (its identity, size and time of change), the overrides and the
 * lab's own validation code. While none of those changed it is not parsed and validated again:
 * at 1000 services that is most of a `lab scale`. Any change, or an unreadable cache, reads the file.
 * No yaml or zod here: `up` writes this, and loads neither for a built-in scenario.
 */
interface TopologyCache {
  key: string;
  topology: Topology;
  path: string;
}

const cacheFile = (lab: string) => join(labDir(lab), 'topology.json');

/** Which reading of a topology file this is: the file's identity, size and times, the overrides, the lab's validation code. */
export function topologyKey(path: string, overrides: Record<string, string>): string | undefined {
  try {
    const f = statSync(path);
    return JSON.stringify([path, f.dev, f.ino, f.size, f.mtimeMs, f.ctimeMs, overrides, validationCode()]);
  } catch {
    return undefined;
  }
}

/** The kept topology, if it was read with this key. */
export function cachedTopology(lab: string, key: string | undefined): { topology: Topology; path: string } | undefined {
  if (key === undefined) return undefined;
  try {
    const cached = JSON.parse(readFileSync(cacheFile(lab), 'utf8')) as TopologyCache;
    return cached.key === key ? { topology: cached.topology, path: cached.path } : undefined;
  } catch {
    return undefined; // no cache yet, or a damaged one: read the file
  }
}

/**
 * The kept topology when only the file changed since it was read (the same path, overrides and
 * validation code, another size or time): a file edited while the lab runs. The lab is what it was
 * built (or last applied) from until `lab apply` takes the edit, so its verbs work from the copy.
 */
export function keptDespiteEdit(lab: string, path: string, overrides: Record<string, string>): { topology: Topology; path: string; key: string } | undefined {
  try {
    const cached = JSON.parse(readFileSync(cacheFile(lab), 'utf8')) as TopologyCache;
    const [keptPath, , , , , , keptOverrides, keptCode] = JSON.parse(cached.key) as unknown[];
    const same = keptPath === path && JSON.stringify(keptOverrides) === JSON.stringify(overrides) && keptCode === validationCode();
    return same && cached.topology?.lab === lab ? { topology: cached.topology, path: cached.path, key: cached.key } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The topology kept when the lab was last read, whatever has changed since: what a verb works
 * from when the file now describes another lab (an edited `lab:`), since the lab named on the
 * command line is the only one a verb may touch.
 */
export function savedTopology(lab: string): { topology: Topology; path: string } | undefined {
  try {
    const saved = JSON.parse(readFileSync(cacheFile(lab), 'utf8')) as TopologyCache;
    return saved.topology?.lab === lab ? { topology: saved.topology, path: saved.path } : undefined;
  } catch {
    return undefined;
  }
}

/** Keep a validated topology for the next commands on this lab (`up` calls this once the lab is up). */
export function rememberTopology(lab: string, loaded: { topology: Topology; path: string }, overrides: Record<string, string>): void {
  const key = topologyKey(loaded.path, overrides);
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
