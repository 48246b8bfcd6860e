import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { preflight } from '../kernel/preflight.js';
import { displayPath, TOPOLOGIES_DIR } from '../topology/load.js';
import { runWalkthrough, type VerifyResult } from '../verify/engine.js';
import { loadWalkthrough } from '../verify/walkthrough.js';
import { runningLab } from './running.js';

export interface VerifyOptions {
  /** Where pcaps and the report go; default lab-runs/<lab>/<timestamp> under the current directory. */
  outDir?: string;
  onProgress?: (text: string) => void;
  /**
   * Another walkthrough than the topology's own: a name (topologies/<name>.walkthrough.yaml)
   * or a file. For a lab whose state differs from its file's, e.g. after `lab kill`.
   */
  walkthrough?: string;
}

/** "nodeport-local-unready" → topologies/nodeport-local-unready.walkthrough.yaml; a path stays a path. */
export function resolveWalkthroughRef(ref: string): string {
  if (ref.includes('/') || /\.ya?ml$/.test(ref)) return resolve(ref);
  const path = resolve(TOPOLOGIES_DIR, `${ref}.walkthrough.yaml`);
  if (!existsSync(path)) {
    const known = readdirSync(TOPOLOGIES_DIR).filter((f) => f.endsWith('.walkthrough.yaml')).map((f) => f.replace(/\.walkthrough\.yaml$/, ''));
    throw new InputError([{ file: `--walkthrough ${ref}`, field: '', message: `no walkthrough named "${ref}" (looked for ${displayPath(path)}; known: ${known.join(', ')})` }]);
  }
  return path;
}

/** Prove a running lab's walkthrough against real traffic. */
export async function verify(lab: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const running = runningLab(lab);
  const topology = opts.walkthrough ? { ...running.topology, walkthrough: resolveWalkthroughRef(opts.walkthrough) } : running.topology;
  const { walkthrough } = loadWalkthrough(topology, running.path);
  preflight();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const runDir = resolve(opts.outDir ?? join('lab-runs', lab, stamp));
  return runWalkthrough(running.topology, walkthrough, runDir, opts.onProgress);
}
