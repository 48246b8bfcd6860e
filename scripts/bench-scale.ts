/**
 * The scale benchmark (`bench.js scale`): how the lab compares with Mininet and with the flat
 * `ip -batch` floor (scripts/floor.sh) at 100 pods, measured in the same run; memory of all the
 * lab's processes; CLI start-up; rules at 1000 services; and a table of pod counts showing how
 * time grows. Prints one markdown table and writes it to a file. Root only, inside its own
 * lab names; Mininet runs in a namespace of its own so the host's namespace stays untouched.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../lab/util/project.js';
import { scaleTopology } from './scale-topology.js';

const exec = promisify(execFile);
const cli = join(PROJECT_ROOT, 'dist', 'lab', 'cli', 'main.js');
const STATE_ROOT = process.env.LAB_STATE_DIR ?? '/run/kube-packet-lab';

async function timed(file: string, args: string[]): Promise<{ ms: number; stdout: string }> {
  const t0 = performance.now();
  const { stdout } = await exec(file, args, { maxBuffer: 64 * 1024 * 1024 });
  return { ms: performance.now() - t0, stdout };
}
const lab = (args: string[]) => timed(process.execPath, [cli, ...args]);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${Math.round(x)} ms`;

/** Resident memory of every process the lab's state records (the workload process), in MB. */
function labRssMb(name: string): number {
  const state = JSON.parse(readFileSync(join(STATE_ROOT, name, 'state.json'), 'utf8')) as { workloadHost?: { pid: number }; processes: { pid: number }[] };
  const pids = new Set([...(state.workloadHost ? [state.workloadHost.pid] : []), ...state.processes.map((p) => p.pid)]);
  let kb = 0;
  for (const pid of pids) {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    kb += Number(m?.[1] ?? 0);
  }
  return kb / 1024;
}

const hasMininet = () => spawnSync('sh', ['-c', 'command -v mn && command -v brctl'], { stdio: 'ignore' }).status === 0;

/** Mininet's single,100 inside a namespace of its own (its switch and links live there, not on the host). */
async function mininet(pods: number): Promise<number> {
  const ns = `mn-bench-${process.pid}`;
  await exec('ip', ['netns', 'add', ns]);
  try {
    await exec('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const r = await timed('ip', ['netns', 'exec', ns, 'mn', '--topo', `single,${pods}`, '--switch', 'lxbr,stp=0', '--controller', 'none', '--test', 'none']);
    return r.ms;
  } finally {
    await exec('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}

interface ScaleRun {
  wall: number;
  rules: number;
  slowest: number;
  lines: number;
  sync: string;
  timings: Record<string, number>;
}

/** One `lab scale` as a user runs it: wall time, and the rules stage as the command reports it. */
async function timedScale(name: string, to = 'web=3'): Promise<ScaleRun> {
  const r = await lab(['scale', name, to, '--json']);
  const j = JSON.parse(r.stdout) as { timings: Record<string, number>; rules: { restoreMs: number; lines: number; sync: string; services: number }[] };
  const first = j.rules[0];
  return {
    wall: r.ms,
    rules: j.timings.rules ?? NaN,
    slowest: Math.max(...j.rules.map((n) => n.restoreMs)),
    lines: first?.lines ?? 0,
    sync: `${first?.sync} sync of ${first?.services} service${first?.services === 1 ? '' : 's'}`,
    timings: j.timings,
  };
}
const scaleValue = (r: ScaleRun) =>
  `rules ${ms(r.rules)} (${r.sync}, ${r.lines} lines, slowest restore ${ms(r.slowest)}); the whole command ${ms(r.wall)} (${Object.entries(r.timings).map(([k, v]) => `${k} ${v}`).join(', ')} ms)`;

interface Row {
  what: string;
  value: string;
  target?: string;
  met?: boolean;
}

/** BENCH_PARTS=nodeport,services runs only those parts (p100, podnet, counts, status, nodeport, services, bgp); all by default. */
const want = (part: string) => !process.env.BENCH_PARTS || process.env.BENCH_PARTS.split(',').includes(part);

/** What every part of the benchmark shares: its settings, where it writes, what it has measured. */
interface Bench {
  rounds: number;
  dir: string;
  rows: Row[];
  /** Labs brought up so far: all are taken down at the end, whatever happened. */
  names: string[];
  topo: (name: string, pods: number, services?: number) => string;
  upDown: (path: string, name: string) => Promise<{ up: number; down: number; rss: number; timings: Record<string, number> }>;
}

export async function scaleBenchmark(rounds: number, outFile: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lab-bench-'));
  const rows: Row[] = [];
  const topo = (name: string, pods: number, services = 0) => {
    const path = join(dir, `${name}.yaml`);
    writeFileSync(path, scaleTopology(name, pods, services));
    return path;
  };
  const upDown = async (path: string, name: string) => {
    const up = await lab(['up', path, '--json']);
    const rss = labRssMb(name);
    const down = await lab(['down', name]);
    return { up: up.ms, down: down.ms, rss, timings: (JSON.parse(up.stdout) as { timings: Record<string, number> }).timings };
  };
  const names: string[] = [];
  const b: Bench = { rounds, dir, rows, names, topo, upDown };
  try {
    if (want('p100')) await p100Part(b);
    if (want('podnet')) await podNetworkPart(b);
    if (want('counts')) await podCountsPart(b);
    if (want('status')) await statusPart(b);
    if (want('nodeport')) await nodePortPart(b);
    if (want('services')) await servicesPart(b);
    if (want('bgp')) rows.push(...(await bgpRows(topo('bench-bgp', 100), rounds, names)));
  } finally {
    for (const name of names) await lab(['down', name]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }

  const node = process.version;
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const header = `kube-packet-lab scale benchmark: ${rounds} rounds (medians), ${availableParallelism()} cores, load average ${load} at the end, node ${node}, ${new Date().toISOString()}`;
  const table = [
    '| what | measured | target | |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.what} | ${r.value} | ${r.target ?? ''} | ${r.met === undefined ? '' : r.met ? 'met' : '**missed**'} |`),
  ].join('\n');
  const text = `${header}\n\n${table}\n`;
  process.stdout.write(text);
  writeFileSync(outFile, text);
  process.stdout.write(`\n(written to ${outFile})\n`);
}

/** 100 pods: the lab against the flat floor and Mininet. */
async function p100Part(b: Bench): Promise<void> {
  const { rounds, rows, names, topo, upDown } = b;
  // 1. 100 pods: the lab, the floor and Mininet, interleaved round by round.
  const p100 = topo('bench-p100', 100);
  names.push('bench-p100');
  const labRuns: number[] = [];
  const floorRuns: number[] = [];
  const mnRuns: number[] = [];
  const mn = hasMininet();
  let stages: Record<string, number> = {};
  for (let i = 0; i < rounds; i++) {
    const r = await upDown(p100, 'bench-p100');
    labRuns.push(r.up + r.down);
    stages = r.timings;
    floorRuns.push((await timed('bash', [join(PROJECT_ROOT, 'scripts', 'floor.sh'), '100'])).ms);
    if (mn) mnRuns.push(await mininet(100));
  }
  const labMs = median(labRuns);
  const floorMs = median(floorRuns);
  rows.push({ what: '100-pod lab, `lab up` + `lab down`', value: `${ms(labMs)} (up: ${Object.entries(stages).map(([k, v]) => `${k} ${v}`).join(', ')} ms)` });
  rows.push({ what: 'flat `ip -batch` floor, same network (scripts/floor.sh 100)', value: `${ms(floorMs)}: the lab takes ${(labMs / floorMs).toFixed(2)}×`, target: '≤ 2×', met: labMs / floorMs <= 2 });
  if (mn) {
    const mnMs = median(mnRuns);
    rows.push({ what: 'Mininet `mn --topo single,100 --switch lxbr,stp=0 --controller none --test none`', value: `${ms(mnMs)}: the lab is ${(mnMs / labMs).toFixed(2)}× faster`, target: '≥ 3×', met: mnMs / labMs >= 3 });
  } else {
    rows.push({ what: 'Mininet', value: 'not installed (apt-get install mininet bridge-utils): skipped' });
  }
}

/** The pod network modes against routed. */
async function podNetworkPart(b: Bench): Promise<void> {
  const { rounds, rows, names, topo } = b;
  // 2. The pod network modes (issue 17): the same 100-pod lab in routed, host-gw and vxlan
  //    mode, interleaved round by round; each mode's up + down against routed's.
  const path = topo('bench-pn', 100);
  names.push('bench-pn');
  const modes = ['routed', 'host-gw', 'vxlan'] as const;
  const runs: Record<string, number[]> = Object.fromEntries(modes.map((m) => [m, []]));
  for (let i = 0; i < rounds; i++) {
    for (const mode of modes) {
      const up = await lab(['up', path, '--set', `podNetwork.mode=${mode}`]);
      runs[mode]!.push(up.ms + (await lab(['down', 'bench-pn'])).ms);
    }
  }
  const routed = median(runs.routed!);
  rows.push({ what: '100 pods, podNetwork.mode routed: `lab up` + `lab down`', value: ms(routed) });
  for (const mode of modes.slice(1)) {
    const ratio = median(runs[mode]!) / routed;
    rows.push({ what: `… the same lab in ${mode} mode`, value: `${ms(median(runs[mode]!))}: ${ratio.toFixed(2)}× routed`, target: '≤ 1.3×', met: ratio <= 1.3 });
  }
}

/** Time and memory as the pod count grows. */
async function podCountsPart(b: Bench): Promise<void> {
  const { rows, names, topo, upDown } = b;
  // 3. Pod counts: time and memory as the lab grows. Linear growth shows as a steady cost per added pod.
  let previous: { pods: number; ms: number } | undefined;
  for (const pods of [10, 100, 200, 1000]) {
    const name = `bench-n${pods}`;
    names.push(name);
    const r = await upDown(topo(name, pods), name);
    const total = r.up + r.down;
    const marginal = previous ? `, +${((total - previous.ms) / (pods - previous.pods)).toFixed(1)} ms per pod added since ${previous.pods}` : '';
    previous = { pods, ms: total };
    rows.push({
      what: `${pods} pods: up, down, RSS of all lab processes`,
      value: `up ${ms(r.up)}, down ${ms(r.down)}${marginal}; ${r.rss.toFixed(0)} MB`,
      ...(pods === 100 ? { target: '< 300 MB', met: r.rss < 300 } : pods === 1000 ? { target: 'works, < 1 GB', met: r.rss < 1024 } : {}),
    });
  }
}

/** CLI start-up. */
async function statusPart(b: Bench): Promise<void> {
  const { rounds, rows } = b;
  // 4. CLI start-up: `lab status` against a bare node.
  const statusRuns: number[] = [];
  const nodeRuns: number[] = [];
  for (let i = 0; i < Math.max(5, rounds * 3); i++) {
    nodeRuns.push((await timed(process.execPath, ['-e', '0'])).ms);
    statusRuns.push((await lab(['status'])).ms);
  }
  const ratio = median(statusRuns) / median(nodeRuns);
  rows.push({ what: '`lab status` (no lab up) vs bare `node -e 0`', value: `${ms(median(statusRuns))} vs ${ms(median(nodeRuns))}: ${ratio.toFixed(2)}×`, target: '≤ 3×', met: ratio <= 3 });
}

/** The NodePort lab up and down. */
async function nodePortPart(b: Bench): Promise<void> {
  const { rounds, rows, names } = b;
  // 5. The NodePort lab.
  names.push('bench-np');
  const np: number[] = [];
  for (let i = 0; i < Math.max(3, rounds); i++) {
    np.push((await lab(['up', 'nodeport', '--name', 'bench-np'])).ms + (await lab(['down', 'bench-np'])).ms);
  }
  rows.push({ what: '`lab up nodeport` + `lab down nodeport`', value: ms(median(np)), target: '< 650 ms', met: median(np) < 650 });
}

/** 1000 ClusterIP services: the first restore and scale resyncs. */
async function servicesPart(b: Bench): Promise<void> {
  const { rounds, rows, names, topo, dir } = b;
  // 6. 1000 ClusterIP services with 2 endpoints each: the initial restore and `lab scale` resyncs.
  //    a) every service selects app=web, so scaling web changes all 1001 of them: the worst case,
  //       every chain rewritten; b) the 1000 select two pods of their own, so scaling web changes
  //       one Service: kube-proxy's partial sync writes that one and the top-level chains.
  names.push('bench-svc', 'bench-own');
  const up = JSON.parse((await lab(['up', topo('bench-svc', 2, 1000), '--json'])).stdout) as { timings: Record<string, number> };
  const restore = up.timings['kube-proxy rules'] ?? NaN;
  const all = await timedScale('bench-svc');
  await lab(['down', 'bench-svc']);
  rows.push({ what: '1001 services × 2 endpoints: first restore (both nodes at once)', value: ms(restore), target: '< 1 s', met: restore < 1000 });
  rows.push({ what: '… `lab scale web=3` when all 1001 services select app=web: every service changes, every chain rewritten', value: scaleValue(all) });
  const ownPath = join(dir, 'bench-own.yaml');
  writeFileSync(ownPath, scaleTopology('bench-own', 2, 1000, { ownPods: true }));
  await lab(['up', ownPath]);
  const one: ScaleRun[] = [];
  // Up and down in turn, so each round is a partial sync of one Service.
  for (let i = 0; i < Math.max(3, rounds); i++) one.push(await timedScale('bench-own', i % 2 === 0 ? 'web=3' : 'web=2'));
  await lab(['down', 'bench-own']);
  const rulesMs = median(one.map((r) => r.rules));
  rows.push({
    what: '1000 services × 2 endpoints + web: `lab scale` changes one service (kube-proxy\'s partial sync; the rules stage: plan + restore, both nodes)',
    value: scaleValue(one.find((r) => r.rules === rulesMs) ?? one[0]!),
    target: '< 1 s',
    met: rulesMs < 1000,
  });
}

/**
 * podNetwork mode bgp at 100 pods: `up` in routed and in bgp mode, interleaved round by round,
 * and bgp's own stage (a BIRD per node and router, until every session is Established and every
 * route installed in the router's kernel).
 */
async function bgpRows(path: string, rounds: number, names: string[]): Promise<Row[]> {
  names.push('bench-bgp');
  const runs: { routed: number; bgp: number; daemons: number }[] = [];
  for (let i = 0; i < Math.max(3, rounds); i++) {
    const routed = await lab(['up', path, '--json']);
    await lab(['down', 'bench-bgp']);
    const bgp = await lab(['up', path, '--json', '--set', 'podNetwork.mode=bgp']);
    await lab(['down', 'bench-bgp']);
    const daemons = (JSON.parse(bgp.stdout) as { timings: Record<string, number> }).timings['pod network daemons'] ?? NaN;
    runs.push({ routed: routed.ms, bgp: bgp.ms, daemons });
  }
  const daemons = median(runs.map((r) => r.daemons));
  const extra = median(runs.map((r) => r.bgp - r.routed));
  return [
    { what: '100 pods, podNetwork mode bgp: `lab up` vs routed mode, same run', value: `${ms(median(runs.map((r) => r.bgp)))} vs ${ms(median(runs.map((r) => r.routed)))}: ${ms(extra)} more` },
    { what: '… bgp\'s own stage: 3 BIRDs started until every session is Established and every route installed', value: `${ms(daemons)} (rounds: ${runs.map((r) => Math.round(r.daemons)).join(', ')} ms)`, target: '< 2 s', met: daemons < 2000 },
  ];
}
