import { join } from 'node:path';
import { log } from '../log.js';
import { topologyGraph } from '../picture/graph.js';
import { dropsAtHops } from '../picture/drop.js';
import { pathHops } from '../picture/hops.js';
import { renderHtml } from '../picture/html.js';
import { playerPath } from '../picture/walk-steps.js';
import type { Topology } from '../topology/schema.js';
import { gatherEvidence, saveEvidence, type Evidence } from './evidence.js';
import { judgeWalkthrough } from './judges.js';
import type { VerifyResult } from './result.js';
import type { Walkthrough } from './walkthrough.js';
import { writeRunFile } from '../util/run-file.js';

export type { PathResult, StepResult, StepStatus } from './judges.js';
export type { PathTrace, VerifyResult } from './result.js';

/** Count the judged steps into a result. Pure. */
export function summarise(t: Pick<Topology, 'lab'>, w: Walkthrough, runDir: string, evidence: Evidence, ms: number): VerifyResult {
  const paths = judgeWalkthrough(w, evidence);
  const all = paths.flatMap((p) => p.steps);
  return {
    lab: t.lab,
    title: w.title,
    seed: w.seed,
    runDir,
    html: join(runDir, 'report.html'),
    captures: evidence.captures,
    flows: evidence.flows,
    paths,
    passed: all.filter((s) => s.status === 'pass').length,
    failed: all.filter((s) => s.status === 'fail').length,
    ms,
  };
}

/** report.html, from the result, the topology and the captured packets. Pure. */
export function reportHtml(t: Topology, result: VerifyResult, evidence: Evidence, when = new Date().toISOString()): string {
  const player = result.paths.map((p) => {
    const hops = p.flow ? pathHops(p.flow, evidence.packets) : undefined;
    // The traced connection's drops when --trace traced one for this path, else the run's own.
    const traced = result.traces?.[p.name];
    const drops = traced?.drops?.length ? traced.drops : p.flow ? (evidence.drops?.[p.flow.client] ?? []) : [];
    return playerPath(t, p, hops, p.flow ? evidence.translations?.[p.flow.client] : undefined, dropsAtHops(hops, drops, Boolean(p.flow?.answer)));
  });
  return renderHtml({ result, graph: topologyGraph(t), player, traces: result.traces, when });
}

/** Keep a run beside its pcaps: evidence.json, conntrack.txt, report.json and report.html. */
export function writeRun(t: Topology, result: VerifyResult, evidence: Evidence): void {
  const { runDir } = result;
  saveEvidence(runDir, evidence);
  writeRunFile(join(runDir, 'conntrack.txt'), Object.entries(evidence.conntrack).map(([n, e]) => `# ${n}\n${e.map((x) => x.text).join('\n')}`).join('\n\n') + '\n');
  writeRunFile(join(runDir, 'report.json'), `${JSON.stringify(result, null, 2)}\n`);
  const started = performance.now();
  writeRunFile(result.html, reportHtml(t, result, evidence));
  log.debug({ ms: Math.round(performance.now() - started), file: result.html }, 'report.html written');
}

/**
 * A verify run in three stages: gather the evidence (traffic, captures, kernel reads), judge
 * each documented step against it, and keep everything beside the pcaps.
 */
export async function runWalkthrough(t: Topology, w: Walkthrough, runDir: string, onProgress?: (text: string) => void): Promise<{ result: VerifyResult; evidence: Evidence }> {
  const started = performance.now();
  const evidence = await gatherEvidence(t, w, runDir, onProgress);
  const result = summarise(t, w, runDir, evidence, Math.round(performance.now() - started));
  writeRun(t, result, evidence);
  return { result, evidence };
}
