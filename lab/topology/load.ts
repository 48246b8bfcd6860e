import { existsSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { PROJECT_ROOT } from '../util/project.js';
import { fieldName, YamlFile } from '../util/yaml-file.js';
import { checkTopology } from './check.js';
import { topologySchema, type Topology } from './schema.js';
import { NAME_PATTERN } from './names.js';

/** The project's own topologies/ folder, wherever the lab is run from. */
export const TOPOLOGIES_DIR = resolve(PROJECT_ROOT, 'topologies');

export interface LoadedTopology {
  topology: Topology;
  /** Absolute path of the file. */
  path: string;
  /** The YAML file, kept for locating problems found later (walkthrough references). */
  file: YamlFile;
}

/** "nodeport" → topologies/nodeport.yaml; anything with a slash or .yaml is a path. */
export function resolveTopologyPath(nameOrPath: string): string {
  const looksLikePath = nameOrPath.includes('/') || /\.ya?ml$/.test(nameOrPath);
  if (looksLikePath) return resolve(nameOrPath);
  if (!NAME_PATTERN.test(nameOrPath)) {
    throw new InputError([{ file: nameOrPath, field: '', message: 'not a scenario name (a-z, 0-9, -) nor a path to a .yaml file' }]);
  }
  const path = resolve(TOPOLOGIES_DIR, `${nameOrPath}.yaml`);
  if (!existsSync(path)) {
    throw new InputError([{ file: nameOrPath, field: '', message: `no scenario named "${nameOrPath}" (looked for ${displayPath(path)})` }]);
  }
  return path;
}

export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/** Read, validate and check a topology. Throws InputError naming file, field and line. */
export function loadTopology(nameOrPath: string, overrides: Record<string, string> = {}): LoadedTopology {
  const path = resolveTopologyPath(nameOrPath);
  const file = YamlFile.read(path, displayPath(path));
  applyOverrides(file, overrides);
  const topology = file.validate(topologySchema);
  const problems = checkTopology(topology, file);
  if (problems.length > 0) throw new InputError(problems);
  return { topology, path, file };
}

/**
 * --set overrides, e.g. "services.web.externalTrafficPolicy=Local" or "lab=np2":
 * list items are addressed by their name, values are parsed as YAML scalars.
 */
export function applyOverrides(file: YamlFile, overrides: Record<string, string>): void {
  for (const [key, raw] of Object.entries(overrides)) {
    const parts = key.split('.');
    const path: (string | number)[] = [];
    let here: unknown = file.data();
    for (const part of parts) {
      if (Array.isArray(here)) {
        const index = here.findIndex((item) => item && typeof item === 'object' && (item as { name?: unknown }).name === part);
        if (index < 0) throw new InputError([{ file: `--set ${key}`, field: fieldName(path), message: `no item named "${part}" here` }]);
        path.push(index);
        here = here[index];
      } else {
        path.push(part);
        here = here && typeof here === 'object' ? (here as Record<string, unknown>)[part] : undefined;
      }
    }
    file.doc.setIn(path, parseScalar(raw));
  }
}

function parseScalar(raw: string): unknown {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (/^-?\d+$/.test(raw)) return Number(raw);
  return raw;
}
