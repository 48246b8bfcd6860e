import { existsSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { PROJECT_ROOT } from '../util/project.js';
import { NAME_PATTERN } from './names.js';

/** The project's own topologies/ folder, wherever the lab is run from. */
export const TOPOLOGIES_DIR = resolve(PROJECT_ROOT, 'topologies');

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
