import type { ResultPromise } from 'execa';
import { execa } from 'execa';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labFootprint, markerOf, netnsInode, plantedProblems, recordedPids, STATE_ROOT, unplacedWorkloads, type PlantedNamespace, type PlantedProcess } from './fault-invariants.js';
import { describeRound, faultSchedule, verbText, type Edit, type FaultSignal, type Round, type UpFrom, type Verb } from './fault-schedule.js';
import { lab, namespaces, processStartTime, requireRoot, ROOT, sh, startLab, thoroughHostSnapshot, type CliResult } from './helpers.js';

/**
 * Issue 16, "how to close it": a seeded random schedule of signals, concurrent verbs and edited
 * files (test/e2e/fault-schedule.ts) on one lab, with things planted beside it that are not the
 * lab's: namespaces named like its own and like another lab's, and `sleep` processes (one inside
 * such a namespace). After every round: the host's namespace is as it was, the planted things
 * are untouched, and the lab has no namespace and no process its state does not list. A round
 * that SIGKILLed a verb or edited the state file may leave a half-built lab: then `lab down` must
 * clean it completely. A verb may fail, with a documented exit code and one line; never a stack
 * trace. LAB_FAULT_SEED and LAB_FAULT_ROUNDS replay a run (a failure names both).
 */

const root = requireRoot();
const SEED = Number(process.env.LAB_FAULT_SEED ?? 16);
const ROUNDS = Number(process.env.LAB_FAULT_ROUNDS ?? 24);
if (!Number.isSafeInteger(SEED) || !Number.isSafeInteger(ROUNDS) || ROUNDS < 0) throw new Error('LAB_FAULT_SEED and LAB_FAULT_ROUNDS must be whole numbers');
const SCHEDULE = faultSchedule(SEED, ROUNDS);
const replay = (round: number) => `seed ${SEED}, round ${round} of ${ROUNDS}; replay: LAB_FAULT_SEED=${SEED} LAB_FAULT_ROUNDS=${round}`;

const LAB = 'fault';
/** The lab the topology file is edited to name; never brought up. */
const OTHER = 'fother';
/** Not the lab's: named like its pods (one carrying another lab's marker), and like another lab's node. */
const PLANTED = [`${LAB}-web-9`, `${LAB}-web-8`, `${OTHER}-node1`];
const NODEPORT = readFileSync(join(ROOT, 'topologies', 'nodeport.yaml'), 'utf8');
const SIGNAL_EXIT: Record<Exclude<FaultSignal, 'SIGKILL'>, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };
/** lab/errors.ts and docs/guarantees.md: every exit code a verb may end with, besides a signal's. */
const DOCUMENTED_EXITS = [0, 1, 2, 3, 4, 5];
const VERB_DEADLINE_MS = 150_000;
const stateFile = (l: string) => join(STATE_ROOT, l, 'state.json');

let tmp: string;
let topologyFile: string;
let hostBefore: Record<string, string>;
const planted: { namespaces: PlantedNamespace[]; processes: PlantedProcess[] } = { namespaces: [], processes: [] };
const sleepers: ResultPromise[] = [];
const tally = new Map<string, number>();

const topologyNaming = (l: string) => NODEPORT.replace(/^lab: nodeport$/m, `lab: ${l}`);
const upArgs = (from: UpFrom) => (from === 'file' ? ['up', topologyFile] : ['up', 'nodeport', '--name', LAB]);

function argsOf(v: Verb, tag: string): string[] {
  switch (v.verb) {
    case 'up':
      return upArgs(v.from ?? 'builtin');
    case 'scale':
      return ['scale', LAB, `web=${v.replicas}`];
    case 'kill':
    case 'revive':
      return [v.verb, LAB, v.pod!];
    case 'verify':
      return ['verify', LAB, '--out', join(tmp, `verify-${tag}`)];
    case 'capture':
      return ['capture', LAB, 'node1', '--duration', String(v.seconds)];
    default:
      return [v.verb, LAB];
  }
}

interface Outcome {
  text: string;
  result: CliResult & { signal?: string };
  /** The signal this suite sent, when the verb was still running to get it. */
  sent?: FaultSignal;
  hung?: boolean;
}

const describeOutcome = (o: Outcome) =>
  `"${o.text}": ${o.result.signal ? `ended by ${o.result.signal}` : `exit ${o.result.exitCode}`}${o.sent ? ` (sent ${o.sent})` : ''}${o.hung ? ' HUNG' : ''}` +
  `${o.result.exitCode !== 0 && o.result.stderr.trim() ? `: ${o.result.stderr.trim().split('\n').slice(-2).join(' / ')}` : ''}`;

/** A process and its start time, to wait for it without mistaking a later one that took its pid. */
type Proc = { pid: number; startTime: string };
const sameProc = (p: Proc) => {
  try {
    return processStartTime(p.pid) === p.startTime;
  } catch {
    return false;
  }
};

/** Every live descendant of pid, from /proc's parent links. */
function descendants(pid: number): Proc[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* exited since the listing */
    }
  }
  const found: Proc[] = [];
  const visit = (p: number) => {
    for (const [child, ppid] of parent) {
      if (ppid !== p) continue;
      try {
        found.push({ pid: child, startTime: processStartTime(child) });
      } catch {
        continue;
      }
      visit(child);
    }
  };
  visit(pid);
  return found;
}

/**
 * Run one verb, maybe signalled. A SIGKILLed verb's children are orphaned mid-command (an
 * `ip -batch` still making namespaces): give those that end on their own 3 s, as a person would
 * take at least that long to type `lab down` after a kill.
 */
async function runVerb(v: Verb, tag: string, signal?: Round['signal']): Promise<Outcome> {
  const child = startLab(argsOf(v, tag));
  let exited = false;
  child.once('exit', () => (exited = true));
  const outcome: Omit<Outcome, 'result'> = { text: verbText(v) };
  let orphans: Proc[] = [];
  const signalTimer = signal
    ? setTimeout(() => {
        if (exited) return;
        if (signal.name === 'SIGKILL') orphans = descendants(child.pid!);
        child.kill(signal.name);
        outcome.sent = signal.name;
      }, signal.afterMs)
    : undefined;
  const watchdog = setTimeout(() => {
    outcome.hung = true;
    child.kill('SIGKILL');
  }, VERB_DEADLINE_MS);
  const r = await child;
  clearTimeout(signalTimer);
  clearTimeout(watchdog);
  for (let waited = 0; waited < 3000 && orphans.some(sameProc); waited += 50) await sleep(50);
  const result = { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), ...(r.signal ? { signal: r.signal } : {}) };
  const done = { ...outcome, result };
  const key = `${v.verb} ${done.result.signal ?? `exit ${done.result.exitCode}`}`;
  tally.set(key, (tally.get(key) ?? 0) + 1);
  return done;
}

/** What is wrong with how a verb ended: an undocumented exit, a signal no one sent, a stack trace. */
function outcomeProblems(o: Outcome): string[] {
  const problems: string[] = [];
  const { result, sent } = o;
  if (o.hung) problems.push(`${describeOutcome(o)}: still running after ${VERB_DEADLINE_MS / 1000} s`);
  if (result.signal && result.signal !== sent && !o.hung) problems.push(`${describeOutcome(o)}: ended by a signal this suite did not send`);
  const allowed = [...DOCUMENTED_EXITS, ...(sent && sent !== 'SIGKILL' ? [SIGNAL_EXIT[sent]] : [])];
  if (!result.signal && !allowed.includes(result.exitCode)) problems.push(`${describeOutcome(o)}: exit ${result.exitCode} is none of ${allowed.join(', ')}`);
  if (/^\s+at \S/m.test(result.stderr)) problems.push(`${describeOutcome(o)}: a stack trace on stderr:\n${result.stderr}`);
  if (/unexpected error/.test(result.stderr + result.stdout)) problems.push(`${describeOutcome(o)}: an unexpected error`);
  return problems;
}

/** Bring the lab to where the round starts; a failure here is the previous round's doing. */
async function prepare(round: Round): Promise<void> {
  writeFileSync(topologyFile, topologyNaming(LAB));
  const must = async (args: string[]) => {
    const r = await lab(args, { timeout: 120_000 });
    if (r.exitCode !== 0) throw new Error(`preparing the round, "lab ${args.join(' ')}" failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  };
  let up = (await lab(['status', LAB])).exitCode === 0;
  const fromFile = () => (JSON.parse(readFileSync(stateFile(LAB), 'utf8')) as { topologyPath: string }).topologyPath === topologyFile;
  if (up && (round.start === 'down' || (round.start === 'up-from-file' && !fromFile()))) {
    await must(['down', LAB]);
    up = false;
  }
  if (!up && existsSync(join(STATE_ROOT, LAB))) await must(['down', LAB]);
  if (!up && round.start !== 'down') await must(upArgs(round.start === 'up-from-file' ? 'file' : round.upFrom));
}

/** Edit the lab's state or topology file as a careless or hostile person would. True when the state file was edited. */
function applyEdit(edit: Edit | undefined): boolean {
  if (!edit) return false;
  if (edit.kind === 'topology-other-lab') {
    writeFileSync(topologyFile, topologyNaming(OTHER));
    return false;
  }
  const path = stateFile(LAB);
  if (!existsSync(path)) return false;
  const text = readFileSync(path, 'utf8');
  if (edit.kind === 'state-truncate') {
    writeFileSync(path, text.slice(0, Math.floor(text.length * (edit.at ?? 0.5))));
    return true;
  }
  const state = JSON.parse(text) as Record<string, unknown> & { namespaces: string[]; processes: object[]; workloadHost?: object };
  const sleeper = planted.processes[0]!;
  const foreignPid = { pid: sleeper.pid, startTime: sleeper.startTime };
  if (edit.kind === 'state-foreign-pid') {
    if (state.workloadHost) state.workloadHost = { ...state.workloadHost, ...foreignPid };
    state.processes = state.processes.map((p) => ({ ...p, ...foreignPid }));
  }
  if (edit.kind === 'state-foreign-namespace') state.namespaces.push(`${LAB}-web-9`, `${LAB}-web-8`);
  if (edit.kind === 'state-phase') state.phase = 'creating';
  if (edit.kind === 'state-other-lab') state.lab = OTHER;
  writeFileSync(path, JSON.stringify(state, null, 2));
  return true;
}

/** No verb is running and nothing forced a half-built lab: every namespace and process of the lab is one its state lists. */
async function consistencyProblems(): Promise<string[]> {
  const found = await labFootprint(LAB, PLANTED);
  const unplaced = unplacedWorkloads();
  const problems = unplaced.map((p) => `a workload process placed in no lab: pid ${p.pid}`);
  if (!existsSync(stateFile(LAB))) {
    if (found.namespaces.length) problems.push(`no state file, yet namespaces of the lab: ${found.namespaces.join(', ')}`);
    for (const p of found.processes) problems.push(`no state file, yet a process of the lab: ${p.pid} ${p.args}`);
    return problems;
  }
  let state: { phase?: string; namespaces?: string[] } & Parameters<typeof recordedPids>[0];
  try {
    state = JSON.parse(readFileSync(stateFile(LAB), 'utf8')) as typeof state;
  } catch {
    return [...problems, `the lab's state file is not JSON, and nothing but the lab wrote it: ${readFileSync(stateFile(LAB), 'utf8').slice(0, 200)}`];
  }
  if (state.phase !== 'up') problems.push(`the lab's state is in phase ${state.phase} with no verb running`);
  const listed = state.namespaces ?? [];
  for (const ns of found.namespaces.filter((n) => !listed.includes(n))) problems.push(`namespace ${ns} (marker ${(await markerOf(ns)) ?? 'none'}) is the lab's but its state does not list it`);
  const recorded = recordedPids(state);
  for (const p of found.processes.filter((x) => !recorded.includes(x.pid))) problems.push(`process ${p.pid} (${p.args}) runs in the lab but its state does not record it`);
  return problems;
}

/** After `lab down`: nothing of the lab at all (an unplaced workload process gets 5 s to exit on its own). */
async function leftoverProblems(): Promise<string[]> {
  let problems: string[] = [];
  for (let waited = 0; waited <= 5000; waited += 250) {
    const found = await labFootprint(LAB, PLANTED);
    problems = [
      ...found.namespaces.map((ns) => `namespace ${ns} is left after lab down`),
      ...found.processes.map((p) => `process ${p.pid} (${p.args}) is left after lab down`),
      ...unplacedWorkloads().map((p) => `a workload process placed in no lab is left after lab down: pid ${p.pid}`),
      ...(existsSync(join(STATE_ROOT, LAB)) ? [`${join(STATE_ROOT, LAB)} is left after lab down`] : []),
    ];
    if (problems.length === 0 || found.namespaces.length > 0) return problems;
    await sleep(250);
  }
  return problems;
}

/** Nothing of the other lab the topology file was edited to name: no namespace but the planted one, no state. */
async function otherLabProblems(): Promise<string[]> {
  const made = (await namespaces()).filter((ns) => ns.startsWith(`${OTHER}-`) && !PLANTED.includes(ns));
  return [...made.map((ns) => `namespace ${ns} of lab ${OTHER}, which nothing asked for`), ...(existsSync(join(STATE_ROOT, OTHER)) ? [`a state folder for lab ${OTHER}`] : [])];
}

function hostProblems(now: Record<string, string>): string[] {
  return Object.keys(hostBefore)
    .filter((k) => now[k] !== hostBefore[k])
    .map((k) => {
      const was = new Set(hostBefore[k]!.split('\n'));
      const is = new Set(now[k]!.split('\n'));
      const gone = [...was].filter((l) => !is.has(l)).map((l) => `- ${l}`);
      const added = [...is].filter((l) => !was.has(l)).map((l) => `+ ${l}`);
      return `the host's ${k} changed:\n${[...gone, ...added].join('\n')}`;
    });
}

async function runRound(round: Round): Promise<void> {
  const t0 = Date.now();
  await prepare(round);
  const stateEdited = applyEdit(round.edit);
  const first = runVerb(round.verb, `${round.index}-a`, round.signal);
  const second = round.concurrent ? sleep(round.concurrent.afterMs).then(() => runVerb(round.concurrent!.verb, `${round.index}-b`)) : undefined;
  const outcomes = [await first, ...(second ? [await second] : [])];
  const problems = outcomes.flatMap(outcomeProblems);
  let recovery = '';
  if (stateEdited || outcomes.some((o) => o.sent === 'SIGKILL')) {
    const d = await lab(['down', LAB], { timeout: 120_000 });
    const down: Outcome = { text: 'down (recovery)', result: d };
    recovery = `; then ${describeOutcome(down)}`;
    problems.push(...outcomeProblems(down), ...(d.exitCode !== 0 ? [`${describeOutcome(down)}: down must always clean`] : []), ...(await leftoverProblems()));
  } else {
    problems.push(...(await consistencyProblems()));
  }
  problems.push(...(await plantedProblems(planted)), ...(await otherLabProblems()), ...hostProblems(await thoroughHostSnapshot()));
  const summary = `${outcomes.map(describeOutcome).join('; ')}${recovery}`;
  console.log(`round ${round.index}/${ROUNDS} (${((Date.now() - t0) / 1000).toFixed(1)} s): ${describeRound(round)}\n  -> ${summary}`);
  if (problems.length) throw new Error(`${replay(round.index)}\n  round: ${describeRound(round)}\n  verbs: ${summary}\n  found:\n    ${problems.join('\n    ')}`);
}

/** The planted namespaces and sleeps: made by this suite, so it may delete and kill them at the end. */
async function plant(): Promise<void> {
  for (const ns of PLANTED) {
    if ((await namespaces()).includes(ns)) await sh('ip', ['netns', 'del', ns]); // a previous run of this suite, stopped before its end
    await sh('ip', ['netns', 'add', ns]);
  }
  await sh('ip', ['-n', `${LAB}-web-8`, 'link', 'set', 'lo', 'alias', `kube-packet-lab:${OTHER}`]);
  for (const ns of PLANTED) planted.namespaces.push({ name: ns, inode: netnsInode(ns), marker: await markerOf(ns) });
  const starts: [string, string[]][] = [
    ['the host namespace', ['sleep', '100000']],
    [`namespace ${LAB}-web-9`, ['ip', 'netns', 'exec', `${LAB}-web-9`, 'sleep', '100000']],
  ];
  for (const [where, [file, ...args]] of starts) {
    const child = execa(file!, args, { reject: false });
    sleepers.push(child);
    // ip netns exec becomes the sleep (exec): wait for it, so the start time is the sleep's.
    for (let i = 0; i < 200 && !readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').startsWith('sleep'); i++) await sleep(10);
    planted.processes.push({ pid: child.pid!, startTime: processStartTime(child.pid!), where });
  }
}

describe.skipIf(!root)(`fault injection: seed ${SEED}, ${ROUNDS} rounds of signals, concurrent verbs and edited files`, () => {
  let failed = false;
  beforeAll(async () => {
    for (const l of [LAB, OTHER]) await lab(['down', l]);
    hostBefore = await thoroughHostSnapshot();
    tmp = mkdtempSync(join(tmpdir(), 'lab-fault-'));
    topologyFile = join(tmp, `${LAB}.yaml`);
    writeFileSync(topologyFile, topologyNaming(LAB));
    copyFileSync(join(ROOT, 'topologies', 'nodeport.walkthrough.yaml'), join(tmp, 'nodeport.walkthrough.yaml'));
    await plant();
    console.log(`fault injection: seed ${SEED}, ${ROUNDS} rounds (LAB_FAULT_SEED=${SEED} LAB_FAULT_ROUNDS=${ROUNDS})`);
  });
  afterAll(async () => {
    for (const l of [LAB, OTHER]) await lab(['down', l]);
    for (const s of sleepers) s.kill('SIGKILL');
    await Promise.all(sleepers);
    for (const ns of PLANTED) await sh('ip', ['netns', 'del', ns]);
    rmSync(tmp, { recursive: true, force: true });
    console.log(`fault injection, seed ${SEED}: how the verbs ended: ${[...tally].sort().map(([k, n]) => `${k} ×${n}`).join(', ')}`);
  });

  for (const round of SCHEDULE) {
    it(`round ${round.index}: ${describeRound(round)}`, { timeout: 2 * VERB_DEADLINE_MS + 120_000 }, async (ctx) => {
      if (failed) ctx.skip(`an earlier round failed (${replay(round.index - 1)})`);
      try {
        await runRound(round);
      } catch (err) {
        failed = true;
        throw err;
      }
    });
  }

  it('after lab down: no namespace and no process of the lab at all, the planted ones untouched, the host as it was', async () => {
    const d = await lab(['down', LAB], { timeout: 120_000 });
    expect(d.exitCode, d.stderr).toBe(0);
    const problems = [...(await leftoverProblems()), ...(await plantedProblems(planted)), ...(await otherLabProblems()), ...hostProblems(await thoroughHostSnapshot())];
    expect(problems, `seed ${SEED}, after all ${ROUNDS} rounds`).toEqual([]);
  });
});
