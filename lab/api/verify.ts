import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { preflight, requireRoot } from '../kernel/preflight.js';
import { withLabLock } from '../state/lock.js';
import { interruptedBy, onInterrupt } from '../util/interrupt.js';
import { makeOutputDir } from '../util/output-dir.js';
import { writeRunFile } from '../util/run-file.js';
import { displayPath, TOPOLOGIES_DIR } from '../topology/paths.js';
import { runWalkthrough, writeRun, type PathTrace, type VerifyResult } from '../verify/engine.js';
import { flowFitsPath, trafficGroups } from '../verify/paths.js';
import { loadWalkthrough, type Walkthrough } from '../verify/walkthrough.js';
import { deriveWalkthrough } from '../verify/derive/index.js';
import { walkthroughInMode } from '../verify/mode-walkthrough.js';
import type { Topology } from '../topology/schema.js';
import { trace } from './trace.js';
import { probeStep, runFaultProbes } from './fault-probes.js';
import { runningLab } from './running.js';
import { requireWorkloadHost } from './workloads.js';

export interface VerifyOptions {
  /** Where pcaps and the report go; default lab-runs/<lab>/<timestamp> under the current directory. */
  outDir?: string;
  onProgress?: (text: string) => void;
  /**
   * Another walkthrough than the topology's own: a name (topologies/<name>.walkthrough.yaml)
   * or a file. For a lab whose state differs from its file's, e.g. after `lab kill`.
   */
  walkthrough?: string;
  /** Attach the kernel's rule trace of one connection per path to report.html and report.json. */
  trace?: boolean;
}

/** How many new connections --trace sends, at most, to find one that takes a given path. */
const TRACE_ATTEMPTS = 12;

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

/** What `--walkthrough derived` asks for: the walkthrough derived from the topology, even where it names one. */
export const DERIVED_WALKTHROUGH = 'derived';

/**
 * The walkthrough to prove: the one asked for, else the topology's own in its load balancer mode
 * (walkthroughInMode), else the one its Services derive.
 */
function walkthroughFor(t: Topology, path: string, ref: string | undefined): Walkthrough {
  if (ref === DERIVED_WALKTHROUGH || (!ref && !t.walkthrough)) return deriveWalkthrough(t, path).walkthrough;
  return loadWalkthrough(ref ? { ...t, walkthrough: resolveWalkthroughRef(ref) } : walkthroughInMode(t, path), path).walkthrough;
}

/** Prove a running lab's walkthrough against real traffic. */
export function verify(lab: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  requireRoot(); // before the lock: its file is root's
  // Held for the whole run: a concurrent scale or kill would change what is measured, and two
  // runs at once would count each other's packets in the rule counters.
  return withLabLock(lab, 'verify', async () => {
    const running = runningLab(lab);
    const walkthrough = walkthroughFor(running.topology, running.path, opts.walkthrough);
    preflight();
    // Every pod is served by one process: a dead or stopped one would fail every step, slowly, without naming it.
    await requireWorkloadHost(running.state);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const runDir = makeOutputDir(opts.outDir ?? join('lab-runs', lab, stamp), opts.outDir !== undefined ? '--out' : undefined);
    // Until the report is written, the folder says it is incomplete (also after a SIGKILL).
    const marker = join(runDir, INCOMPLETE_FILE);
    writeRunFile(marker, `verify of lab ${lab} started ${new Date().toISOString()} by pid ${process.pid} and has not finished\n`);
    const release = onInterrupt(`mark ${runDir} incomplete`, () => writeRunFile(marker, `verify of lab ${lab} was stopped by ${interruptedBy()} at ${new Date().toISOString()}: the captures and report here are partial\n`));
    try {
      const { result, evidence } = await runWalkthrough(running.topology, walkthrough, runDir, opts.onProgress);
      // A fault lab break put in whose symptom no step of the walkthrough sees: its probes are one more path.
      const probes = (await runFaultProbes(running)).map(probeStep);
      if (probes.length) {
        result.paths.push({ name: 'fault probes', summary: 'requests the symptom of a fault put in by lab break shows on (no step of the walkthrough sends them)', steps: probes });
        result.passed += probes.filter((p) => p.status === 'pass').length;
        result.failed += probes.filter((p) => p.status === 'fail').length;
        if (!opts.trace) writeRun(running.topology, result, evidence);
      }
      if (opts.trace) {
        result.traces = await tracePaths(lab, walkthrough, opts.onProgress);
        writeRun(running.topology, result, evidence);
      }
      rmSync(marker, { force: true });
      return result;
    } catch (err) {
      if (!interruptedBy()) writeRunFile(marker, `verify of lab ${lab} failed: ${err instanceof Error ? err.message : String(err)}\n`);
      throw err;
    } finally {
      release();
    }
  });
}

/** The file an unfinished run folder holds: it says why the run did not finish. */
export const INCOMPLETE_FILE = 'INCOMPLETE';


/**
 * One traced connection per path: trace new connections of the path's traffic until one takes
 * the path (kube-proxy picks the endpoint at random, so this may take a few).
 */
async function tracePaths(lab: string, w: Walkthrough, onProgress?: (text: string) => void): Promise<Record<string, PathTrace>> {
  const out: Record<string, PathTrace> = {};
  for (const g of trafficGroups(w)) {
    for (let i = 0; i < TRACE_ATTEMPTS && g.paths.some((p) => !out[p.name]); i++) {
      onProgress?.(`tracing ${g.traffic.from} -> ${g.traffic.to} (${i + 1})`);
      const t = await trace(lab, { from: g.traffic.from, to: g.traffic.to });
      const path = g.paths.find((p) => !out[p.name] && flowFitsPath(t.flow, p));
      if (path) out[path.name] = { mode: t.mode, flow: t.flow, hops: t.hops, ...(t.drops.length ? { drops: t.drops } : {}) };
    }
  }
  return out;
}
