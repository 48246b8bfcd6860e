import { InputError } from '../errors.js';
import { fieldName, YamlFile } from '../util/yaml-file.js';
import { checkTopology } from './check.js';
import { blameOverrides, overrideValue, type OverriddenField } from './overrides.js';
import { displayPath, resolveTopologyPath } from './paths.js';
import { topologySchema, type Topology } from './schema.js';

export interface LoadedTopology {
  topology: Topology;
  /** Absolute path of the file. */
  path: string;
  /** The YAML file, kept for locating problems found later (walkthrough references). */
  file: YamlFile;
}

/** Read, validate and check a topology. Throws InputError naming file, field and line. */
export function loadTopology(nameOrPath: string, overrides: Record<string, string> = {}): LoadedTopology {
  const path = resolveTopologyPath(nameOrPath);
  const file = YamlFile.read(path, displayPath(path));
  const overridden = applyOverrides(file, overrides);
  try {
    const topology = file.validate(topologySchema);
    const problems = checkTopology(topology, file);
    if (problems.length > 0) throw new InputError(problems);
    return { topology, path, file };
  } catch (err) {
    if (err instanceof InputError && overridden.length > 0) throw new InputError(blameOverrides(err.problems, overridden));
    throw err;
  }
}

/**
 * --set overrides, e.g. "services.web.externalTrafficPolicy=Local" or "lab=np2":
 * list items are addressed by their name, values are parsed as YAML scalars or flow lists/maps;
 * an empty value removes the field.
 */
export function applyOverrides(file: YamlFile, overrides: Record<string, string>): OverriddenField[] {
  const overridden: OverriddenField[] = [];
  for (const [key, raw] of Object.entries(overrides)) {
    const expr = `${key}=${raw}`;
    const parts = key.split('.');
    const path: (string | number)[] = [];
    let here: unknown = file.data();
    for (const part of parts) {
      if (Array.isArray(here)) {
        const index = here.findIndex((item) => item && typeof item === 'object' && (item as { name?: unknown }).name === part);
        if (index < 0) throw new InputError([{ file: `--set ${expr}`, field: fieldName(path), message: `no item named "${part}" here` }]);
        path.push(index);
        here = here[index];
      } else {
        path.push(part);
        here = here && typeof here === 'object' ? (here as Record<string, unknown>)[part] : undefined;
      }
    }
    // `--set k=` (or `--unset k`) removes the field: its default, or its absence, takes over.
    if (raw === '') file.doc.deleteIn(path);
    else file.doc.setIn(path, overrideValue(raw, expr));
    overridden.push({ field: fieldName(path), expr });
  }
  return overridden;
}
