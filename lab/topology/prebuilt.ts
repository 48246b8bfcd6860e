import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PROJECT_ROOT } from '../util/project.js';
import { fieldName } from '../util/yaml-file.js';
import { checkTopology } from './check.js';
import { isLabName, NAME_PATTERN } from './names.js';
import { overrideValue } from './overrides.js';
import { TOPOLOGIES_DIR } from './paths.js';
import type { Topology } from './schema.js';

/**
 * The built-in scenarios, validated when the lab is built: `npm run build` writes
 * dist/scenarios/<name>.json with the file's text and the validated model. `lab up nodeport`
 * reads that instead of parsing the YAML and running the schema, which would load the yaml and
 * zod libraries: about a third of the command's start-up (docs/benchmarks.md).
 *
 * Used only where it gives exactly what loadTopology would: the file's text is the text that
 * was validated, the validation code has not changed since (every file of it, compiled and
 * source, has the same size and time of change), and the only override is the lab's name,
 * which is checked here as the schema and the checks would check it. Anything else returns
 * undefined and the caller reads the file; so does any problem, which the caller then reports
 * with its line.
 */
export const PREBUILT_DIR = join(PROJECT_ROOT, 'dist', 'scenarios');

export interface PrebuiltScenario {
  /** The topology file's text when it was validated. */
  source: string;
  /** The validation code then (see validationCode). */
  code: string;
  topology: Topology;
}

/** The folders holding the code a topology's validation runs, compiled and source (either may be absent). */
const VALIDATION_DIRS = ['dist/lab/topology', 'dist/lab/plan/pod-network', 'dist/lab/util', 'dist/lab/errors.js', 'lab/topology', 'lab/plan/pod-network', 'lab/util', 'lab/errors.ts'];

/**
 * A stamp of the validation code: a hash of every file's path, size and time of change. It
 * changes whenever any of it is edited or rebuilt; a model validated by other code is not used.
 */
export function validationCode(): string {
  const out: [string, number, number][] = [];
  const walk = (path: string) => {
    let s;
    try {
      s = statSync(path);
    } catch {
      return;
    }
    if (s.isDirectory()) for (const e of readdirSync(path).sort()) walk(join(path, e));
    else if (/\.(js|ts)$/.test(path)) out.push([relative(PROJECT_ROOT, path), s.size, s.mtimeMs]);
  };
  for (const d of VALIDATION_DIRS) walk(join(PROJECT_ROOT, d));
  return fnv1a(JSON.stringify(out));
}

/** FNV-1a, 32 bits, as hex: enough to tell one state of the code from another (node:crypto costs start-up time). */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

export function prebuiltTopology(nameOrPath: string, overrides: Record<string, string>): { topology: Topology; path: string } | undefined {
  if (!NAME_PATTERN.test(nameOrPath) || Object.keys(overrides).some((k) => k !== 'lab')) return undefined;
  const path = join(TOPOLOGIES_DIR, `${nameOrPath}.yaml`);
  let saved: PrebuiltScenario;
  try {
    const source = readFileSync(path, 'utf8');
    saved = JSON.parse(readFileSync(join(PREBUILT_DIR, `${nameOrPath}.json`), 'utf8')) as PrebuiltScenario;
    if (saved.source !== source || saved.code !== validationCode()) return undefined;
  } catch {
    return undefined;
  }
  const { topology } = saved;
  if (overrides.lab !== undefined) {
    const lab = overrideValue(overrides.lab);
    if (typeof lab !== 'string' || !isLabName(lab)) return undefined;
    topology.lab = lab;
    // The checks that involve the name (namespace and interface names): any problem, and the file is read to report it.
    const unlocated = { path, problem: (field: readonly PropertyKey[], message: string) => ({ file: path, field: fieldName(field), message }) };
    if (checkTopology(topology, unlocated).length > 0) return undefined;
  }
  return { topology, path };
}
