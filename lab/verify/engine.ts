import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Topology } from '../topology/schema.js';
import { gatherEvidence, saveEvidence, type Evidence } from './evidence.js';
import type { Flow } from './flows.js';
import { judgeWalkthrough, type PathResult } from './judges.js';
import type { Walkthrough } from './walkthrough.js';

export type { PathResult, StepResult, StepStatus } from './judges.js';

export interface VerifyResult {
  lab: string;
  title: string;
  seed: string;
  runDir: string;
  captures: Record<string, string>;
  flows: Flow[];
  paths: PathResult[];
  passed: number;
  failed: number;
  ms: number;
}

/** Count the judged steps into a result. Pure. */
export function summarise(t: Pick<Topology, 'lab'>, w: Walkthrough, runDir: string, evidence: Evidence, ms: number): VerifyResult {
  const paths = judgeWalkthrough(w, evidence);
  const all = paths.flatMap((p) => p.steps);
  return {
    lab: t.lab,
    title: w.title,
    seed: w.seed,
    runDir,
    captures: evidence.captures,
    flows: evidence.flows,
    paths,
    passed: all.filter((s) => s.status === 'pass').length,
    failed: all.filter((s) => s.status === 'fail').length,
    ms,
  };
}

/**
 * A verify run in three stages: gather the evidence (traffic, captures, kernel reads), judge
 * each documented step against it, and keep everything beside the pcaps.
 */
export async function runWalkthrough(t: Topology, w: Walkthrough, runDir: string, onProgress?: (text: string) => void): Promise<VerifyResult> {
  const started = performance.now();
  const evidence = await gatherEvidence(t, w, runDir, onProgress);
  const result = summarise(t, w, runDir, evidence, Math.round(performance.now() - started));
  saveEvidence(runDir, evidence);
  writeFileSync(join(runDir, 'conntrack.txt'), Object.entries(evidence.conntrack).map(([n, e]) => `# ${n}\n${e.map((x) => x.text).join('\n')}`).join('\n\n') + '\n');
  writeFileSync(join(runDir, 'report.json'), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}
