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

/** One session: its options, how it writes, and the learner's progress so far (updated as steps end). */
interface Session {
  o: SessionOptions;
  st: Style;
  width: number;
  ids: string[];
  progress: Progress;
  say: (text?: string) => void;
  /** Workshop text, its placeholders filled for this lab, wrapped to the width. */
  prose: (text: string, indent?: string) => void;
}

/** One step being asked: the learner's attempts and hints so far, and the probe's reading once it sent traffic. */
interface StepAttempt {
  step: WorkshopStep;
  i: number;
  ctx: AnswerContext;
  attempts: number;
  hints: number;
  cached?: ProbeResult;
}

export async function runSession(o: SessionOptions): Promise<SessionResult> {
  const { lab, io } = o;
  const w = o.loaded.workshop;
  const width = o.width ?? 80;
  const say = (text = '') => io.write(`${text}\n`);
  const s: Session = {
    o,
    st: o.style ?? plainStyle,
    width,
    ids: w.steps.map((step) => step.id),
    progress: o.progress,
    say,
    prose: (text, indent = '  ') => say(wrap(fill(text, lab), width, indent)),
  };

  const start = nextStepIndex(s.progress, s.ids);
  greet(s, start);
  for (let i = start; i < w.steps.length; i++) {
    const step = w.steps[i]!;
    if (s.progress.steps[step.id]) continue;
    const done = await askStep(s, step, i);
    if (done === 'stopped') {
      say();
      say(s.st.dim(`stopped at step ${i + 1} of ${s.ids.length}; progress is saved. Resume with: lab workshop ${lab}`));
      return { outcome: 'stopped', progress: s.progress };
    }
  }

  const sc = score(s.progress, s.ids);
  say();
  say(s.st.bold('Workshop complete.') + ` ${sc.correct} of ${sc.total} answered (${sc.firstTry} at the first try), ${sc.skipped} skipped.`);
  if (w.outro) s.prose(w.outro);
  return { outcome: 'finished', progress: s.progress };
}

/** The title, then the intro on a first visit or where a returning learner left off. */
function greet(s: Session, start: number): void {
  const { o, st, say } = s;
  const w = o.loaded.workshop;
  say(st.bold(`${w.title}`) + st.dim(`  (lab ${o.lab})`));
  if (w.seed) say(st.dim(`follows seed ${w.seed}`));
  if (start === 0 && Object.keys(s.progress.steps).length === 0) {
    if (w.intro) {
      say();
      s.prose(w.intro);
    }
  } else if (start < s.ids.length) {
    const sc = score(s.progress, s.ids);
    say(st.dim(`welcome back: ${sc.done} of ${sc.total} steps done, continuing at step ${start + 1}`));
  }
  say(st.dim(`at the prompt: an answer, or ${o.runLooks ? 'run, ' : ''}hint, skip, again, quit`));
}

function showStep(s: Session, step: WorkshopStep, i: number): void {
  const { o, st, say } = s;
  say();
  const seed = step.seed ? st.dim(`  [seed ${step.seed}]`) : '';
  say(st.bold(`Step ${i + 1} of ${s.ids.length}: ${fill(step.title, o.lab)}`) + seed);
  say();
  s.prose(step.explain);
  if (step.look.length > 0) {
    say();
    say('  Look:');
    for (const l of step.look.map(lookCommand)) {
      say(`    $ ${fill(l.cmd, o.lab)}${l.note ? st.dim(`   # ${fill(l.note, o.lab)}`) : ''}`);
    }
  }
  say();
  say(wrap(st.bold('Q: ') + fill(step.question, o.lab), s.width, '  '));
}

/** Prompt until the step is answered or skipped ('done'), or the learner quits or input ends ('stopped'). */
async function askStep(s: Session, step: WorkshopStep, i: number): Promise<'done' | 'stopped'> {
  const a: StepAttempt = { step, i, ctx: { kind: answerKind(step), port: step.port, hosts: s.o.hosts }, attempts: 0, hints: 0 };
  showStep(s, step, i);
  for (;;) {
    const line = await s.o.io.ask('answer> ');
    if (line === undefined) return 'stopped';
    const word = line.trim().toLowerCase();
    if (QUIT.has(word)) return 'stopped';
    if (await obeyCommand(s, a, word)) continue;
    if (SKIP.has(word)) {
      await skipStep(s, a);
      return 'done';
    }
    if (await judgeAnswer(s, a, line)) return 'done';
  }
}

/** The words that neither answer nor leave the step (nothing, help, again, hint, run): true when `word` was one, and done. */
async function obeyCommand(s: Session, a: StepAttempt, word: string): Promise<boolean> {
  const { o, st, say } = s;
  if (word === '') {
    say(st.dim(`  type your answer, or ${o.runLooks ? 'run, ' : ''}hint, skip, again, quit`));
  } else if (HELP.has(word)) {
    say('  answer  check your answer against the live lab');
    if (o.runLooks) say('  run     run the commands under "Look" for you');
    say('  hint    a hint (each wrong answer gives one too)');
    say("  skip    see the lab's answer and move on");
    say('  again   show this step again');
    say('  quit    stop here; progress is saved, run the same command to resume');
  } else if (AGAIN.has(word)) {
    showStep(s, a.step, a.i);
  } else if (HINT.has(word)) {
    if (!nextHint(s, a)) say(st.dim('  no more hints: type skip to see the answer and move on'));
  } else if (RUN.has(word)) {
    if (!o.runLooks) say(st.dim('  run is not available here: type the commands yourself'));
    else if (a.step.look.length === 0) say(st.dim('  this step has no command to run'));
    else await o.runLooks(a.step.look);
  } else {
    return false;
  }
  return true;
}

async function skipStep(s: Session, a: StepAttempt): Promise<void> {
  const r = await readLab(s, a);
  s.say(s.st.dim(`  skipped. ${'values' in r ? `The lab's answer: ${showExpected(r.values, a.ctx)}` : `(the lab could not read its answer: ${r.unavailable})`}`));
  finishStep(s, a, 'skipped');
}

/** Check an answer against the lab: true when it is right (the step is finished); otherwise feedback and a hint. */
async function judgeAnswer(s: Session, a: StepAttempt, line: string): Promise<boolean> {
  const { o, st, say, width } = s;
  const r = await readLab(s, a);
  if ('unavailable' in r) {
    say(wrap(st.yellow('cannot check yet: ') + r.unavailable, width, '  '));
    return false;
  }
  const v = judge(line, r.values, a.ctx);
  if (v.form) {
    say(st.yellow(`  ${v.message ?? 'that is not an answer of the right form'}`));
    return false;
  }
  if (v.near) {
    say(wrap(st.yellow('almost: ') + `${v.message} (not counted as a try)`, width, '  '));
    return false;
  }
  a.attempts += 1;
  if (v.ok) {
    say(st.green(`  right`) + `: the lab says ${showExpected([v.matched ?? r.values[0]!], a.ctx)}`);
    finishStep(s, a, 'correct', line.trim());
    return true;
  }
  const fb = a.step.feedback.find((f) => judge(line, [f.answer], a.ctx).ok && !judge(f.answer, r.values, a.ctx).ok);
  say(st.red('  not quite') + (fb ? `: ${fill(fb.say, o.lab)}` : v.message ? `: ${v.message}` : '.'));
  if (!nextHint(s, a)) say(st.dim('  type skip to see the answer and move on'));
  return false;
}

/** The step's answer as the live lab has it; a probe that sends traffic is read once per step. */
async function readLab(s: Session, a: StepAttempt): Promise<ProbeResult> {
  if (a.cached) return a.cached;
  const check = a.step.check;
  if (sendsTraffic(check)) s.say(s.st.dim('  (checking: the lab sends a few requests of its own…)'));
  const r = await s.o.probe(check);
  if (sendsTraffic(check) && 'values' in r) a.cached = r;
  return r;
}

/** The step's next hint, if it has one left: false when none is. */
function nextHint(s: Session, a: StepAttempt): boolean {
  const { step } = a;
  if (a.hints >= step.hints.length) return false;
  s.say(wrap(s.st.yellow(`Hint ${a.hints + 1}/${step.hints.length}: `) + fill(step.hints[a.hints]!, s.o.lab), s.width, '  '));
  a.hints += 1;
  return true;
}

/** Record the step's outcome, save the progress, and show its debrief. */
function finishStep(s: Session, a: StepAttempt, outcome: 'correct' | 'skipped', answer?: string): void {
  s.progress = recordStep(s.progress, a.step.id, { outcome, attempts: a.attempts, hints: a.hints, ...(answer !== undefined ? { answer } : {}) });
  s.o.save(s.progress);
  if (a.step.debrief) {
    s.say();
    s.prose(a.step.debrief);
  }
}
