/**
 * Where `lab up nodeport` + `lab down nodeport` spend their time (`bench.js startup [rounds]`),
 * the CLI as users run it (dist/lab/cli/main.js, bundled by `npm run build`):
 *
 * - the pair itself, wall time, as a user types it;
 * - the same with a copy of the scenario file outside topologies/ (read and validated at run
 *   time: yaml and zod load), to show what the build-time validation of built-in scenarios saves;
 * - the floors: a bare `node -e 0`, and `lab --version` (the CLI's own start);
 * - `up`'s timeline from its debug log (which loads pino, so those runs are a little slower):
 *   when its first kernel command starts, when its kernel work ends, when the workload process
 *   (started first thing, see lab/kernel/workloads.ts) is ready;
 * - importing zod and yaml alone, for scale.
 *
 * Medians over `rounds`, round by round in one process. Root only; uses its own lab name for the
 * timeline runs and the scenario's own name (as a user would) for the pair, so a lab called
 * nodeport must not be up.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../lab/util/project.js';

const exec = promisify(execFile);
const cli = join(PROJECT_ROOT, 'dist', 'lab', 'cli', 'main.js');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Milliseconds to import `specifier` in a fresh Node process (measured inside it). */
async function importMs(specifier: string): Promise<number> {
  const script = `const t=performance.now(); import(${JSON.stringify(specifier)}).then(()=>console.log(performance.now()-t))`;
  return Number((await exec(process.execPath, ['-e', script], { cwd: PROJECT_ROOT })).stdout.trim());
}

async function wallMs(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ ms: number; startedAt: number; stderr: string }> {
  const startedAt = Date.now();
  const { stderr } = await exec(process.execPath, args, { env, maxBuffer: 16 * 1024 * 1024 });
  return { ms: Date.now() - startedAt, startedAt, stderr };
}

interface LogLine {
  msg?: string;
  time?: number;
  ms?: number;
}

/** From `up`'s debug log: first command's start, last command's end, workload ready; ms after launch. */
function timeline(stderr: string, startedAt: number): { first?: number; kernelDone?: number; ready?: number } {
  const lines = stderr.split('\n').flatMap((l): LogLine[] => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
  const commands = lines.filter((l) => l.msg === 'command' && l.time !== undefined);
  const ready = lines.find((l) => l.msg === 'workload process ready')?.time;
  return {
    first: commands.length ? Math.min(...commands.map((c) => c.time! - (c.ms ?? 0))) - startedAt : undefined,
    kernelDone: commands.length ? Math.max(...commands.map((c) => c.time!)) - startedAt : undefined,
    ready: ready !== undefined ? ready - startedAt : undefined,
  };
}

export async function startupBenchmark(rounds: number): Promise<void> {
  const lab = `bench-startup-${process.pid % 10000}`;
  const dir = mkdtempSync(join(tmpdir(), 'bench-startup-'));
  const userFile = join(dir, 'nodeport.yaml');
  copyFileSync(join(PROJECT_ROOT, 'topologies', 'nodeport.yaml'), userFile);
  const rows = new Map<string, number[]>();
  const add = (what: string, ms: number | undefined) => ms !== undefined && rows.set(what, [...(rows.get(what) ?? []), ms]);
  try {
    for (let i = 0; i < rounds; i++) {
      add('node -e 0', (await wallMs(['-e', '0'])).ms);
      add('lab --version', (await wallMs([cli, '--version'])).ms);
      const up = (await wallMs([cli, 'up', 'nodeport'])).ms;
      const down = (await wallMs([cli, 'down', 'nodeport'])).ms;
      add('lab up nodeport', up);
      add('lab down nodeport', down);
      add('lab up nodeport + lab down nodeport', up + down);
      const upFile = (await wallMs([cli, 'up', userFile, '--name', lab])).ms;
      const downFile = (await wallMs([cli, 'down', lab])).ms;
      add('the same, from a file outside topologies/', upFile + downFile);
      const debug = await wallMs([cli, 'up', 'nodeport', '--name', lab], { ...process.env, LAB_LOG_LEVEL: 'debug' });
      await wallMs([cli, 'down', lab]);
      const t = timeline(debug.stderr, debug.startedAt);
      add('up (debug log): first kernel command starts', t.first);
      add('up (debug log): last kernel command ends', t.kernelDone);
      add('up (debug log): workload process ready', t.ready);
      add('import zod (alone, unbundled)', await importMs('zod'));
      add('import yaml (alone, unbundled)', await importMs('yaml'));
    }
  } finally {
    await exec(process.execPath, [cli, 'down', lab]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`kube-packet-lab start-up benchmark: ${rounds} rounds (medians), node ${process.version}, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  for (const [what, xs] of rows) console.log(`  ${what.padEnd(46)} ${String(Math.round(median(xs))).padStart(5)} ms`);
}
