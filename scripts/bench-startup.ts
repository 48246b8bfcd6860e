/**
 * Where `lab up nodeport` spends its time before the kernel work (`bench.js startup [rounds]`):
 * a bare `node -e 0`, importing `lab/api/up.js` and each module `lab/api/up.js` imports (each in a fresh process, so
 * a dependency they share counts in each), a few libraries alone, and how long after the
 * process starts `up`'s first kernel command begins (from its debug log: each command's end
 * time and duration). Medians. Root only; uses its own lab name.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
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

export async function startupBenchmark(rounds: number): Promise<void> {
  const lab = `bench-startup-${process.pid % 10000}`;
  const upFile = join(PROJECT_ROOT, 'dist', 'lab', 'api', 'up.js');
  const imported = [...readFileSync(upFile, 'utf8').matchAll(/from '(\.[^']+)'/g)].map((m) => new URL(m[1]!, pathToFileURL(upFile)).href);
  const modules = [pathToFileURL(upFile).href, ...imported];
  const rows: [string, number[]][] = [['node -e 0 (wall)', []], ...['zod', 'yaml', 'pino', 'commander'].map((l) => [`import ${l}`, []] as [string, number[]]), ...modules.map((m) => [`import ${m.slice(m.indexOf('/dist/') + 6)}`, []] as [string, number[]])];
  const firstCommand: number[] = [];
  const upWall: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      rows[0]![1].push((await wallMs(['-e', '0'])).ms);
      for (const row of rows.slice(1)) {
        const spec = row[0].slice('import '.length);
        row[1].push(await importMs(spec.includes('/') ? pathToFileURL(join(PROJECT_ROOT, 'dist', spec)).href : spec));
      }
      const up = await wallMs([cli, 'up', 'nodeport', '--name', lab], { ...process.env, LAB_LOG_LEVEL: 'debug' });
      upWall.push(up.ms);
      const first = up.stderr
        .split('\n')
        .flatMap((l) => {
          try {
            const e = JSON.parse(l) as { msg?: string; time?: number; ms?: number };
            return e.msg === 'command' && e.time !== undefined ? [e.time - (e.ms ?? 0)] : [];
          } catch {
            return [];
          }
        })
        .sort((a, b) => a - b)[0];
      if (first !== undefined) firstCommand.push(first - up.startedAt);
      await exec(process.execPath, [cli, 'down', lab]);
    }
  } finally {
    await exec(process.execPath, [cli, 'down', lab]).catch(() => undefined);
  }
  console.log(`kube-packet-lab start-up benchmark: ${rounds} rounds (medians), node ${process.version}, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log(`  lab up nodeport (wall)                     ${Math.round(median(upWall))} ms`);
  console.log(`  … its first kernel command starts after    ${Math.round(median(firstCommand))} ms`);
  for (const [what, xs] of rows) console.log(`  ${what.padEnd(42)} ${Math.round(median(xs))} ms`);
}
