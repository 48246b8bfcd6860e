/**
 * The class benchmark (`bench.js class [labs]`): a classroom's labs side by side on one machine.
 * For each set of Node flags of the workload process (the lab's default, lab/kernel/workloads.ts,
 * and none, as before), it brings up `labs` nodeport labs, sends 40 requests to each (`lab probe`),
 * checks them all with `lab verify`, then reads every lab's workload process from
 * /proc/<pid>/smaps_rollup: RSS (what `ps` shows, Node's shared pages counted in every process),
 * PSS (shared pages split among their users: what one more lab really costs) and anonymous memory,
 * and the machine's used memory (MemTotal - MemAvailable) before and after. Root only; run it
 * under scripts/isolated.sh on a shared machine.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readState } from '../lab/state/store.js';
import { mapLimit } from '../lab/util/pool.js';
import { PROJECT_ROOT } from '../lab/util/project.js';

const exec = promisify(execFile);
const cli = join(PROJECT_ROOT, 'dist', 'lab', 'cli', 'main.js');
const run = (args: string[], env: NodeJS.ProcessEnv = process.env) => exec(process.execPath, [cli, ...args], { env, maxBuffer: 16 * 1024 * 1024 });

interface Memory {
  rss: number;
  pss: number;
  anon: number;
}

/** kB fields of a process's smaps_rollup. */
function processMemory(pid: number): Memory {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: field('Rss'), pss: field('Pss'), anon: field('Anonymous') };
}

/** The machine's used memory in kB. */
function usedMemory(): number {
  const text = readFileSync('/proc/meminfo', 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return field('MemTotal') - field('MemAvailable');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;

interface Variant {
  name: string;
  flags: string | undefined;
}

async function measureVariant(v: Variant, labs: number, tag: string): Promise<string> {
  const names = Array.from({ length: labs }, (_, i) => `cls${tag}-${i + 1}`);
  const env = { ...process.env, ...(v.flags === undefined ? {} : { LAB_WORKLOAD_NODE_FLAGS: v.flags }) };
  if (v.flags === undefined) delete env.LAB_WORKLOAD_NODE_FLAGS;
  const before = usedMemory();
  const t0 = performance.now();
  try {
    await mapLimit(names, 3, (lab) => run(['up', 'nodeport', '--name', lab], env));
    const upS = (performance.now() - t0) / 1000;
    await mapLimit(names, 3, (lab) => run(['probe', lab, '-n', '40'], env));
    const verified = await mapLimit(names, 2, (lab) => run(['verify', lab, '--out', `/tmp/${lab}-run`], env).then(() => true, () => false));
    const mem = names.map((lab) => processMemory(readState(lab)!.workloadHost!.pid));
    const used = usedMemory() - before;
    const sum = (k: keyof Memory) => mem.reduce((a, m) => a + m[k], 0);
    return `  ${v.name.padEnd(34)} up ${upS.toFixed(1)} s, ${verified.filter(Boolean).length}/${labs} verify; per lab: RSS ${mb(median(mem.map((m) => m.rss)))}, PSS ${mb(median(mem.map((m) => m.pss)))}, anon ${mb(median(mem.map((m) => m.anon)))}; all ${labs}: RSS ${mb(sum('rss'))}, PSS ${mb(sum('pss'))}; machine +${mb(used)}`;
  } finally {
    await mapLimit(names, 3, (lab) => run(['down', lab], env).catch(() => undefined));
    await exec('rm', ['-rf', ...names.map((lab) => `/tmp/${lab}-run`)]).catch(() => undefined);
  }
}

export async function classBenchmark(labs: number): Promise<void> {
  const variants: Variant[] = [
    { name: 'workload flags: the default', flags: undefined },
    { name: 'workload flags: none (as before)', flags: '' },
  ];
  console.log(`kube-packet-lab class benchmark: ${labs} nodeport labs side by side, node ${process.version}, ${(await exec('nproc')).stdout.trim()} cores`);
  for (const [i, v] of variants.entries()) console.log(await measureVariant(v, labs, String(i)));
}
