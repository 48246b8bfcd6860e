import { join, resolve } from 'node:path';
import { preflight } from '../kernel/preflight.js';
import { runWalkthrough, type VerifyResult } from '../verify/engine.js';
import { loadWalkthrough } from '../verify/walkthrough.js';
import { runningLab } from './running.js';

export interface VerifyOptions {
  /** Where pcaps and the report go; default lab-runs/<lab>/<timestamp> under the current directory. */
  outDir?: string;
  onProgress?: (text: string) => void;
}

/** Prove a running lab's walkthrough against real traffic. */
export async function verify(lab: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const running = runningLab(lab);
  const { walkthrough } = loadWalkthrough(running.topology, running.path);
  preflight();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const runDir = resolve(opts.outDir ?? join('lab-runs', lab, stamp));
  return runWalkthrough(running.topology, walkthrough, runDir, opts.onProgress);
}
