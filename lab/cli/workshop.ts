import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import { checkedLab, ensureWorkshopLab, listWorkshops as workshopListing, workshopHealth, workshopSession, workshopSteps, workshopTarget, type WorkshopTarget } from '../api/workshop.js';
import { ExitCode } from '../errors.js';
import { preflight } from '../kernel/preflight.js';
import type { HealthReport } from '../workshop/health.js';
import { runLooks } from '../workshop/run-looks.js';
import { runSession, type SessionIO } from '../workshop/session.js';
import { resolveLabName } from './lab-name.js';
import { bold, collectSet, dim, green, outputColumns, printJson, progress, progressDone, red, say, yellow } from './output.js';

interface WorkshopOptions {
  name?: string;
  up?: boolean;
  reset?: boolean;
  list?: boolean;
  check?: boolean;
  json?: boolean;
  set: Record<string, string>;
  challenge?: string | boolean;
}

export function registerWorkshop(program: Command): void {
  program
    .command('workshop')
    .description('a guided exercise in the terminal: each step explains, shows a command, and checks your answer against the live lab')
    .argument('[scenario]', 'scenario (e.g. nodeport) or the name of a lab that is up; omit to list workshops')
    .option('--name <lab>', 'the lab to use, when it was brought up with lab up <scenario> --name <lab>')
    .option('--up', 'bring the lab up first if it is not')
    .option('--set <key=value>', 'with --up (or --list): override a topology field as lab up does, e.g. kubeProxy.mode=nftables', collectSet, {})
    .option('--reset', 'forget your progress and start over')
    .option('--list', 'show the steps and your progress, ask nothing')
    .option('--check', "instructor: check that the lab is healthy (exit 0 healthy, 1 not)")
    .option('--json', 'machine-readable output (with --check or --list)')
    .option('--challenge [fault]', 'break and fix: put a fault (named, or random) into the lab, find it, name it, fix it with lab exec')
    .addHelpText(
      'after',
      `
Progress is saved after every step in ~/.kube-packet-lab/workshop/<lab>.json
(LAB_WORKSHOP_DIR overrides): quit (or Ctrl-C) and run the same command to resume.
At the prompt: an answer, or run, hint, skip, again, quit.

Examples:
  lab workshop nodeport --up                 bring up the nodeport lab and start
  lab workshop nodeport --up --set kubeProxy.mode=nftables   the same, kube-proxy in nftables mode
  lab workshop nodeport --name ws-test       use the lab "lab up nodeport --name ws-test" made
  lab workshop ws-test --check --json        instructor: is this attendee's lab healthy?`,
    )
    .action(async (arg: string | undefined, opts: WorkshopOptions) => {
      if (!arg) return listWorkshops(opts);
      const name = opts.name === undefined ? undefined : resolveLabName(opts.name);
      if (opts.check) return instructorCheck(checkedLab(arg, name) ?? resolveLabName(arg), opts.json);
      if (opts.challenge !== undefined) return challenge(checkedLab(arg, name) ?? resolveLabName(arg), typeof opts.challenge === 'string' ? opts.challenge : undefined);
      const target = workshopTarget(arg, name, opts.set);
      if (opts.list) return listSteps(target, opts.json);

      preflight();
      if (await ensureWorkshopLab(target, opts.up ?? false, (s) => progress(`up: ${s}`))) {
        progressDone();
        say(`${green('up')} lab ${target.lab}`);
      }
      await interactive(target, opts.reset ?? false);
    });
}

async function interactive(target: WorkshopTarget, reset: boolean): Promise<void> {
  const setup = workshopSession(target.lab, reset);
  const io = terminalIO();
  try {
    await runSession({
      ...setup,
      lab: target.lab,
      io,
      runLooks: (looks) => runLooks(looks, target.lab, { write: (t) => process.stdout.write(t), dim }),
      style: { bold, dim, green, red, yellow },
      width: Math.min(outputColumns(), 100),
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
  const { workshops, labs } = workshopListing();
  if (opts.json) return printJson({ workshops, labs: labs.map(({ lab, scenario }) => ({ lab, scenario })) });
  say(bold('Workshops:') + (workshops.length ? '' : ' none yet'));
  for (const w of workshops) say(`  ${w.padEnd(16)} lab workshop ${w} --up`);
  if (labs.length) {
    say(bold('Labs that are up:'));
    for (const l of labs) say(`  ${l.lab.padEnd(16)} ${l.scenario}${l.hasWorkshop ? dim(`   lab workshop ${l.lab}`) : dim('   (no workshop for this scenario yet)')}`);
  }
}

function listSteps(target: WorkshopTarget, json?: boolean): void {
  const steps = workshopSteps(target);
  if (json) {
    const { title: _title, ...rest } = steps;
    return printJson(rest);
  }
  say(`${bold(steps.title)} ${dim(`(lab ${steps.lab}; ${steps.score.done} of ${steps.score.total} done)`)}`);
  steps.steps.forEach((st, i) => {
    const mark = st.status === 'correct' ? green('[x]') : st.status === 'skipped' ? yellow('[-]') : '[ ]';
    say(`  ${mark} ${String(i + 1).padStart(2)}. ${st.title}${st.seed ? dim(`  [seed ${st.seed}]`) : ''}`);
  });
  say(dim(`progress: ${steps.progressFile}`));
}

async function instructorCheck(lab: string, json?: boolean): Promise<void> {
  preflight();
  const report: HealthReport = await workshopHealth(lab);
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

async function challenge(lab: string, fault: string | undefined): Promise<void> {
  preflight();
  const { beginChallenge } = await import('../api/challenge.js');
  const game = await beginChallenge(lab, fault);
  const io = terminalIO();
  try {
    await game.play(io, { style: { bold, dim, green, red, yellow }, width: Math.min(outputColumns(), 100) });
  } finally {
    io.close();
  }
}
