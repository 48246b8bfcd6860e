#!/usr/bin/env node
/**
 * Benchmark: how long a user waits for `lab up`, `lab verify` and `lab down`.
 * Runs the compiled CLI as a user would (a fresh node process each time) and prints
 * min / median / max over several rounds. Root only; uses its own lab name.
 *
 *   sudo node dist/scripts/bench.js [scenario] [rounds]
 *   sudo node dist/scripts/bench.js scale [rounds] [out-file]     (see scripts/bench-scale.ts)
 *   sudo node dist/scripts/bench.js health [rounds]               (see scripts/bench-health.ts)
 *   sudo node dist/scripts/bench.js startup [rounds]              (see scripts/bench-startup.ts)
 *   sudo node dist/scripts/bench.js announce [rounds]             (see scripts/bench-announce.ts)
 *   sudo node dist/scripts/bench.js class [labs]                  (see scripts/bench-class.ts)
 */
import { $ } from 'zx';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../lab/util/project.js';

if (process.argv[2] === 'scale') {
  const { scaleBenchmark } = await import('./bench-scale.js');
  await scaleBenchmark(Number(process.argv[3] ?? 3), process.argv[4] ?? join(PROJECT_ROOT, 'lab-runs', 'bench-scale.md'));
  process.exit(0);
}

if (process.argv[2] === 'startup') {
  const { startupBenchmark } = await import('./bench-startup.js');
  await startupBenchmark(Number(process.argv[3] ?? 5));
  process.exit(0);
}

if (process.argv[2] === 'announce') {
  const { announceBenchmark } = await import('./bench-announce.js');
  await announceBenchmark(Number(process.argv[3] ?? 10));
  process.exit(0);
}

if (process.argv[2] === 'class') {
  const { classBenchmark } = await import('./bench-class.js');
  await classBenchmark(Number(process.argv[3] ?? 30));
  process.exit(0);
}

if (process.argv[2] === 'health') {
  const { healthBenchmark } = await import('./bench-health.js');
  await healthBenchmark(Number(process.argv[3] ?? 10));
  process.exit(0);
}

const scenario = process.argv[2] ?? 'nodeport';
const rounds = Number(process.argv[3] ?? 10);
const lab = `bench-${process.pid % 10000}`;
const cli = join(PROJECT_ROOT, 'dist', 'lab', 'cli', 'main.js');
$.verbose = false;

async function timed(args: string[]): Promise<number> {
  const t0 = performance.now();
  await $`node ${cli} ${args}`;
  return performance.now() - t0;
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const fmt = (x: number) => `${Math.round(x)} ms`;
  return `min ${fmt(s[0]!)}, median ${fmt(s[Math.floor(s.length / 2)]!)}, max ${fmt(s[s.length - 1]!)}`;
};

const up: number[] = [];
const verify: number[] = [];
const down: number[] = [];
try {
  for (let i = 0; i < rounds; i++) {
    up.push(await timed(['up', scenario, '--name', lab]));
    verify.push(await timed(['verify', lab, '--out', `/tmp/${lab}-run`]));
    down.push(await timed(['down', lab]));
  }
} finally {
  await $`node ${cli} down ${lab}`.nothrow();
  await $`rm -rf /tmp/${lab}-run`.nothrow();
}
const cycle = up.map((u, i) => u + down[i]!);
console.log(`kube-packet-lab benchmark: ${scenario}, ${rounds} rounds, ${(await $`nproc`).stdout.trim()} cores, node ${process.version}`);
console.log(`  lab up          ${stats(up)}`);
console.log(`  lab verify      ${stats(verify)}`);
console.log(`  lab down        ${stats(down)}`);
console.log(`  up + down       ${stats(cycle)}`);
