import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import { up } from '../api/up.js';
import { runningLab } from '../api/running.js';
import { ExitCode, LabError } from '../errors.js';
import { preflight } from '../kernel/preflight.js';
import { readState, listStates } from '../state/store.js';
import { displayPath, loadTopology, resolveTopologyPath } from '../topology/load.js';
import type { Topology } from '../topology/schema.js';
import { checkHealth, type HealthReport } from '../workshop/health.js';
import { availableWorkshops, hasWorkshop, loadWorkshop, scenarioOf, workshopPathFor, type LoadedWorkshop } from '../workshop/load.js';
import { probe } from '../workshop/probes.js';
import { newProgress, progressFile, readProgress, resetProgress, score, writeProgress } from '../workshop/progress.js';
import { runLooks } from '../workshop/run-looks.js';
import { runSession, type SessionIO } from '../workshop/session.js';
import { resolveLabName } from './lab-name.js';
import { bold, dim, green, printJson, progress, progressDone, red, say, yellow } from './output.js';
import { isLabName } from '../topology/names.js';

interface WorkshopOptions {
  name?: string;
  up?: boolean;
  reset?: boolean;
  list?: boolean;
  check?: boolean;
  json?: boolean;
}

export function registerWorkshop(program: Command): void {
  program
    .command('workshop')
    .description('a guided exercise in the terminal: each step explains, shows a command, and checks your answer against the live lab')
    .argument('[scenario]', 'scenario (e.g. nodeport) or the name of a lab that is up; omit to list workshops')
    .option('--name <lab>', 'the lab to use, when it was brought up with lab up <scenario> --name <lab>')
    .option('--up', 'bring the lab up first if it is not')
    .option('--reset', 'forget your progress and start over')
    .option('--list', 'show the steps and your progress, ask nothing')
    .option('--check', "instructor: check that the lab is healthy (exit 0 healthy, 1 not)")
    .option('--json', 'machine-readable output (with --check or --list)')
    .addHelpText(
      'after',
      `
Progress is saved after every step in ~/.kube-packet-lab/workshop/<lab>.json
(LAB_WORKSHOP_DIR overrides): quit (or Ctrl-C) and run the same command to resume.
At the prompt: an answer, or run, hint, skip, again, quit.

Examples:
  lab workshop nodeport --up                 bring up the nodeport lab and start
  lab workshop nodeport --name ws-test       use the lab "lab up nodeport --name ws-test" made
  lab workshop ws-test --check --json        instructor: is this attendee's lab healthy?`,
    )
    .action(async (arg: string | undefined, opts: WorkshopOptions) => {
      if (!arg) return listWorkshops(opts);
      if (opts.check) return instructorCheck(checkedLab(arg, opts.name), opts.json);
      const target = resolveTarget(arg, opts.name);
      if (opts.list) return listSteps(target, opts.json);

      preflight();
      if (!hasWorkshop(target.topologyPath)) loadWorkshop(target.topology, target.topologyPath); // throws: names the workshops there are
      if (!isUp(target.lab)) {
        if (readState(target.lab)) runningLab(target.lab); // throws: a lab that did not finish coming up
        if (!opts.up) {
          const upCmd = `lab up ${target.scenarioRef === target.topologyPath ? displayPath(target.topologyPath) : target.scenarioRef}${renamed(target) ? ` --name ${target.lab}` : ''}`;
          throw new LabError(`lab "${target.lab}" is not up: run "${upCmd}" first, or add --up`, ExitCode.labState);
        }
        const result = await up(target.topologyPath, { overrides: renamed(target) ? { lab: target.lab } : {}, onStage: (s) => progress(`up: ${s}`) });
        progressDone();
        say(`${green('up')} lab ${result.lab}`);
      }
      await interactive(target, opts.reset ?? false);
    });
}

interface Target {
  lab: string;
  /** What the learner typed for the scenario (a name or a path), or the running lab's topology path. */
  scenarioRef: string;
  topologyPath: string;
  topology: Topology;
}

const isUp = (lab: string) => readState(lab)?.phase === 'up';

/** Is the lab named otherwise than its topology file's own `lab:` (brought up with --name)? */
const renamed = (t: Target) => t.lab !== loadTopology(t.topologyPath).topology.lab;

/** The lab --check looks at: --name, a lab known by that name, or the lab a scenario makes. */
function checkedLab(arg: string, name: string | undefined): string {
  if (name) return resolveLabName(name);
  if (isLabName(arg) && readState(arg)) return arg;
  try {
    return loadTopology(arg).topology.lab;
  } catch {
    return resolveLabName(arg);
  }
}

/**
 * `lab workshop nodeport` (the lab named by the scenario), `lab workshop ws-test` (a lab that
 * is up, whatever it was built from), `lab workshop nodeport --name ws-test`.
 */
function resolveTarget(arg: string, name: string | undefined): Target {
  if (!name && isLabName(arg) && readState(arg)) {
    const lab = resolveLabName(arg);
    if (isUp(lab)) {
      const r = runningLab(lab);
      return { lab, scenarioRef: r.path, topologyPath: r.path, topology: r.topology };
    }
    const state = readState(lab)!;
    const { topology, path } = loadTopology(state.topologyPath, state.overrides);
    return { lab, scenarioRef: path, topologyPath: path, topology };
  }
  const lab = name ? resolveLabName(name) : undefined;
  const path = resolveTopologyPath(arg);
  if (lab && isUp(lab)) {
    const r = runningLab(lab);
    if (r.path !== path) {
      throw new LabError(`lab "${lab}" runs ${scenarioOf(r.path)}, not ${scenarioOf(path)}: run "lab workshop ${lab}"`, ExitCode.badInput);
    }
    return { lab, scenarioRef: arg, topologyPath: r.path, topology: r.topology };
  }
  const { topology } = loadTopology(path, lab ? { lab } : {});
  return { lab: topology.lab, scenarioRef: arg, topologyPath: path, topology };
}

function hostsOf(t: Topology): Map<string, string> {
  const hosts = new Map<string, string>();
  for (const p of t.pods) hosts.set(p.name, p.address);
  for (const n of [...t.nodes, ...t.clients]) hosts.set(n.name, n.address);
  return hosts;
}

async function interactive(target: Target, reset: boolean): Promise<void> {
  const running = runningLab(target.lab);
  const loaded: LoadedWorkshop = loadWorkshop(running.topology, running.path);
  if (reset) resetProgress(target.lab);
  const saved = readProgress(target.lab, loaded.scenario);
  const initial = saved ?? newProgress(target.lab, loaded.scenario);
  if (!saved) writeProgress(initial);

  const io = terminalIO();
  try {
    await runSession({
      loaded,
      lab: target.lab,
      hosts: hostsOf(running.topology),
      progress: initial,
      io,
      probe: (check) => probe(check, { lab: target.lab, topology: running.topology }),
      save: (p) => writeProgress(p),
      runLooks: (looks) => runLooks(looks, target.lab, { write: (t) => process.stdout.write(t), dim }),
      style: { bold, dim, green, red, yellow },
      width: Math.min(process.stdout.columns || 80, 100),
    });
  } finally {
    io.close();
  }
}

/**
 * Plain readline on stdin/stdout: line editing on a terminal (over ssh too), and lines read
 * one by one when answers are piped in (then echoed, so a transcript reads like a session).
 */
function terminalIO(): SessionIO & { close(): void } {
  const terminal = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal });
  // The iterator buffers lines that arrive before they are asked for (piped input).
  const lines = rl[Symbol.asyncIterator]();
  rl.on('SIGINT', () => {
    process.stdout.write(`\n${dim('stopped; progress is saved. Run the same command to resume.')}\n`);
    process.exit(130);
  });
  return {
    write: (text) => void process.stdout.write(text),
    ask: async (prompt) => {
      rl.setPrompt(prompt);
      rl.prompt();
      const next = await lines.next();
      if (next.done) {
        process.stdout.write('\n');
        return undefined;
      }
      if (!process.stdin.isTTY) process.stdout.write(`${next.value}\n`);
      return next.value;
    },
    close: () => rl.close(),
  };
}

function listWorkshops(opts: WorkshopOptions): void {
  const workshops = availableWorkshops();
  const labs = listStates().filter((s) => s.phase === 'up').map((s) => ({ lab: s.lab, scenario: scenarioOf(s.topologyPath) }));
  if (opts.json) return printJson({ workshops, labs });
  say(bold('Workshops:') + (workshops.length ? '' : ' none yet'));
  for (const w of workshops) say(`  ${w.padEnd(16)} lab workshop ${w} --up`);
  if (labs.length) {
    say(bold('Labs that are up:'));
    for (const l of labs) say(`  ${l.lab.padEnd(16)} ${l.scenario}${availableWorkshops().includes(l.scenario) ? dim(`   lab workshop ${l.lab}`) : dim('   (no workshop for this scenario yet)')}`);
  }
}

function listSteps(target: Target, json?: boolean): void {
  const loaded = loadWorkshop(target.topology, target.topologyPath);
  const ids = loaded.workshop.steps.map((s) => s.id);
  const saved = readProgress(target.lab, loaded.scenario) ?? newProgress(target.lab, loaded.scenario);
  const s = score(saved, ids);
  if (json) {
    return printJson({
      lab: target.lab,
      scenario: loaded.scenario,
      file: displayPath(workshopPathFor(target.topologyPath)),
      progressFile: progressFile(target.lab),
      score: s,
      steps: loaded.workshop.steps.map((st) => ({ id: st.id, title: st.title, seed: st.seed, status: saved.steps[st.id]?.outcome ?? 'todo' })),
    });
  }
  say(`${bold(loaded.workshop.title)} ${dim(`(lab ${target.lab}; ${s.done} of ${s.total} done)`)}`);
  loaded.workshop.steps.forEach((st, i) => {
    const rec = saved.steps[st.id];
    const mark = rec?.outcome === 'correct' ? green('[x]') : rec?.outcome === 'skipped' ? yellow('[-]') : '[ ]';
    say(`  ${mark} ${String(i + 1).padStart(2)}. ${st.title}${st.seed ? dim(`  [seed ${st.seed}]`) : ''}`);
  });
  say(dim(`progress: ${progressFile(target.lab)}`));
}

async function instructorCheck(lab: string, json?: boolean): Promise<void> {
  preflight();
  const report: HealthReport = await checkHealth(lab);
  if (json) printJson(report);
  else {
    say(`${bold('workshop check')} lab ${report.lab}${report.scenario ? ` (${report.scenario})` : ''}`);
    const width = Math.max(...report.checks.map((c) => c.name.length));
    for (const c of report.checks) {
      const mark = c.ok === true ? green('ok  ') : c.ok === false ? red('FAIL') : dim('--  ');
      say(`  ${mark} ${c.name.padEnd(width)}  ${c.ok === null ? dim(c.detail) : c.detail}`);
    }
    say(report.healthy ? green('healthy') : red('NOT healthy') + dim(report.checks[0]?.ok === false ? `: bring it up with lab up <scenario> --name ${lab}` : `: lab down ${lab} and lab up again usually fixes it`));
  }
  if (!report.healthy) process.exitCode = ExitCode.checkFailed;
}
