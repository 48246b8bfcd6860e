#!/usr/bin/env node
/**
 * Benchmark of "seeing the walk": how long a user waits for `lab trace <scenario>` (the CLI as
 * they run it, a fresh node process each time) and how long writing report.html takes (in
 * process, on the evidence of a real verify run). Root only; uses its own lab name.
 *
 *   sudo node dist/scripts/bench-seeing.js [scenario] [rounds]
 */
import { $ } from 'zx';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { loadTopology } from '../lab/topology/load.js';
import { PROJECT_ROOT } from '../lab/util/project.js';
import { reportHtml, summarise } from '../lab/verify/engine.js';
import { loadEvidence } from '../lab/verify/evidence.js';
import { loadWalkthrough } from '../lab/verify/walkthrough.js';

const scenario = process.argv[2] ?? 'nodeport';
const rounds = Number(process.argv[3] ?? 10);
const lab = `bench-see-${process.pid % 10000}`;
const cli = join(PROJECT_ROOT, 'dist', 'lab', 'cli', 'main.js');
const runDir = `/tmp/${lab}-run`;
$.verbose = false;

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const fmt = (x: number) => `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`;
  return `min ${fmt(s[0]!)}, median ${fmt(s[Math.floor(s.length / 2)]!)}, max ${fmt(s[s.length - 1]!)}`;
};

const trace: number[] = [];
const traceInside: number[] = [];
const html: number[] = [];
try {
  await $`node ${cli} up ${scenario} --name ${lab}`;
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const out = await $`node ${cli} trace ${lab} --json`;
    trace.push(performance.now() - t0);
    traceInside.push((JSON.parse(out.stdout) as { ms: number }).ms);
  }
  await $`node ${cli} verify ${lab} --out ${runDir}`.nothrow();
  const { topology, path } = loadTopology(scenario);
  const { walkthrough } = loadWalkthrough(topology, path);
  const evidence = loadEvidence(runDir);
  const result = summarise({ lab }, walkthrough, runDir, evidence, 0);
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    writeFileSync(join(runDir, 'report.html'), reportHtml(topology, result, evidence));
    html.push(performance.now() - t0);
  }
} finally {
  await $`node ${cli} down ${lab}`.nothrow();
  await $`rm -rf ${runDir}`.nothrow();
}
console.log(`kube-packet-lab seeing benchmark: ${scenario}, ${rounds} rounds, ${(await $`nproc`).stdout.trim()} cores, load ${loadavg()[0]!.toFixed(1)}, node ${process.version}`);
console.log(`  lab trace (CLI)        ${stats(trace)}`);
console.log(`  lab trace (in process) ${stats(traceInside)}`);
console.log(`  report.html written    ${stats(html)}`);
