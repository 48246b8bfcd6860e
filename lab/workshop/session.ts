import { judge, showExpected, type AnswerContext } from './answers.js';
import type { LoadedWorkshop } from './load.js';
import type { ProbeResult } from './probes.js';
import { nextStepIndex, recordStep, score, type Progress } from './progress.js';
import { answerKind, lookCommand, type Check, type Look, type WorkshopStep } from './schema.js';
import { fill, wrap } from './text.js';

/**
 * The workshop engine: steps through a workshop, reading answers line by line and checking
 * each against the live lab through `probe`. All input and output goes through `io`, so it
 * runs the same on a terminal, over ssh, with answers piped in, and under unit tests.
 */

export interface SessionIO {
  write(text: string): void;
  /** The next line the learner typed; undefined at end of input. */
  ask(prompt: string): Promise<string | undefined>;
}

export interface Style {
  bold: (s: string) => string;
  dim: (s: string) => string;
  green: (s: string) => string;
  red: (s: string) => string;
  yellow: (s: string) => string;
}

export const plainStyle: Style = { bold: (s) => s, dim: (s) => s, green: (s) => s, red: (s) => s, yellow: (s) => s };

export interface SessionOptions {
  loaded: LoadedWorkshop;
  lab: string;
  /** Host name → address, for answers that name a pod. */
  hosts: ReadonlyMap<string, string>;
  progress: Progress;
  io: SessionIO;
  probe: (check: Check) => Promise<ProbeResult>;
  save: (p: Progress) => void;
  /** Runs a step's commands for the learner (`run`); absent: `run` is not offered. */
  runLooks?: (looks: Look[]) => Promise<void>;
  style?: Style;
  width?: number;
}

export interface SessionResult {
  /** finished: every step done; stopped: the learner quit (or input ended) and can resume. */
  outcome: 'finished' | 'stopped';
  progress: Progress;
}

const QUIT = new Set(['quit', 'q', 'exit', ':q']);
const HINT = new Set(['hint', 'h', '?']);
const SKIP = new Set(['skip']);
const RUN = new Set(['run', 'r']);
const AGAIN = new Set(['again', 'look', 'step']);
const HELP = new Set(['help']);

/** Probes that send traffic of their own: read once per step, not at every attempt. */
const sendsTraffic = (c: Check) => Boolean(c.request || c.capture);

export async function runSession(o: SessionOptions): Promise<SessionResult> {
  const { loaded, lab, io } = o;
  const w = loaded.workshop;
  const st = o.style ?? plainStyle;
  const width = o.width ?? 80;
  const ids = w.steps.map((s) => s.id);
  let progress = o.progress;
  const say = (text = '') => io.write(`${text}\n`);
  const prose = (text: string, indent = '  ') => say(wrap(fill(text, lab), width, indent));

  const start = nextStepIndex(progress, ids);
  say(st.bold(`${w.title}`) + st.dim(`  (lab ${lab})`));
  if (w.seed) say(st.dim(`follows seed ${w.seed}`));
  if (start === 0 && Object.keys(progress.steps).length === 0) {
    if (w.intro) {
      say();
      prose(w.intro);
    }
  } else if (start < ids.length) {
    const s = score(progress, ids);
    say(st.dim(`welcome back: ${s.done} of ${s.total} steps done, continuing at step ${start + 1}`));
  }
  say(st.dim(`at the prompt: an answer, or ${o.runLooks ? 'run, ' : ''}hint, skip, again, quit`));

  for (let i = start; i < w.steps.length; i++) {
    const step = w.steps[i]!;
    if (progress.steps[step.id]) continue;
    const done = await askStep(step, i);
    if (done === 'stopped') {
      say();
      say(st.dim(`stopped at step ${i + 1} of ${ids.length}; progress is saved. Resume with: lab workshop ${lab}`));
      return { outcome: 'stopped', progress };
    }
  }

  const s = score(progress, ids);
  say();
  say(st.bold('Workshop complete.') + ` ${s.correct} of ${s.total} answered (${s.firstTry} at the first try), ${s.skipped} skipped.`);
  if (w.outro) prose(w.outro);
  return { outcome: 'finished', progress };

  function showStep(step: WorkshopStep, i: number): void {
    say();
    const seed = step.seed ? st.dim(`  [seed ${step.seed}]`) : '';
    say(st.bold(`Step ${i + 1} of ${ids.length}: ${fill(step.title, lab)}`) + seed);
    say();
    prose(step.explain);
    if (step.look.length > 0) {
      say();
      say('  Look:');
      for (const l of step.look.map(lookCommand)) {
        say(`    $ ${fill(l.cmd, lab)}${l.note ? st.dim(`   # ${fill(l.note, lab)}`) : ''}`);
      }
    }
    say();
    say(wrap(st.bold('Q: ') + fill(step.question, lab), width, '  '));
  }

  async function askStep(step: WorkshopStep, i: number): Promise<'done' | 'stopped'> {
    const ctx: AnswerContext = { kind: answerKind(step), port: step.port, hosts: o.hosts };
    let attempts = 0;
    let hints = 0;
    let cached: ProbeResult | undefined;
    const read = async () => {
      if (cached) return cached;
      if (sendsTraffic(step.check)) say(st.dim('  (checking: the lab sends a few requests of its own…)'));
      const r = await o.probe(step.check);
      if (sendsTraffic(step.check) && 'values' in r) cached = r;
      return r;
    };
    const nextHint = () => {
      if (hints < step.hints.length) {
        say(wrap(st.yellow(`Hint ${hints + 1}/${step.hints.length}: `) + fill(step.hints[hints]!, lab), width, '  '));
        hints += 1;
        return true;
      }
      return false;
    };
    const finish = (outcome: 'correct' | 'skipped', answer?: string) => {
      progress = recordStep(progress, step.id, { outcome, attempts, hints, ...(answer !== undefined ? { answer } : {}) });
      o.save(progress);
      if (step.debrief) {
        say();
        prose(step.debrief);
      }
    };

    showStep(step, i);
    for (;;) {
      const line = await io.ask('answer> ');
      if (line === undefined) return 'stopped';
      const word = line.trim().toLowerCase();
      if (QUIT.has(word)) return 'stopped';
      if (word === '') {
        say(st.dim(`  type your answer, or ${o.runLooks ? 'run, ' : ''}hint, skip, again, quit`));
        continue;
      }
      if (HELP.has(word)) {
        say('  answer  check your answer against the live lab');
        if (o.runLooks) say('  run     run the commands under "Look" for you');
        say('  hint    a hint (each wrong answer gives one too)');
        say("  skip    see the lab's answer and move on");
        say('  again   show this step again');
        say('  quit    stop here; progress is saved, run the same command to resume');
        continue;
      }
      if (AGAIN.has(word)) {
        showStep(step, i);
        continue;
      }
      if (HINT.has(word)) {
        if (!nextHint()) say(st.dim('  no more hints: type skip to see the answer and move on'));
        continue;
      }
      if (RUN.has(word)) {
        if (!o.runLooks) say(st.dim('  run is not available here: type the commands yourself'));
        else if (step.look.length === 0) say(st.dim('  this step has no command to run'));
        else await o.runLooks(step.look);
        continue;
      }
      if (SKIP.has(word)) {
        const r = await read();
        say(st.dim(`  skipped. ${'values' in r ? `The lab's answer: ${showExpected(r.values, ctx)}` : `(the lab could not read its answer: ${r.unavailable})`}`));
        finish('skipped');
        return 'done';
      }

      const r = await read();
      if ('unavailable' in r) {
        say(wrap(st.yellow('cannot check yet: ') + r.unavailable, width, '  '));
        continue;
      }
      const v = judge(line, r.values, ctx);
      if (v.form) {
        say(st.yellow(`  ${v.message ?? 'that is not an answer of the right form'}`));
        continue;
      }
      attempts += 1;
      if (v.ok) {
        say(st.green(`  right`) + `: the lab says ${showExpected([v.matched ?? r.values[0]!], ctx)}`);
        finish('correct', line.trim());
        return 'done';
      }
      const fb = step.feedback.find((f) => judge(line, [f.answer], ctx).ok && !judge(f.answer, r.values, ctx).ok);
      say(st.red('  not quite') + (fb ? `: ${fill(fb.say, lab)}` : v.message ? `: ${v.message}` : '.'));
      if (!nextHint()) say(st.dim('  type skip to see the answer and move on'));
    }
  }
}
