import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { matchDiagnosis } from '../break/index.js';
import type { Fault, FaultPlan } from '../break/catalogue.js';
import { workshopDir } from './progress.js';
import { plainStyle, type SessionIO, type Style } from './session.js';
import { wrap } from './text.js';

/**
 * Break-and-fix challenge: the lab has a fault in it (put in by `lab break` just before); the
 * learner finds it with the lab's tools, names it and the host it is on, fixes it with real
 * commands through `lab exec`, and types `check`: the fix is judged against the live kernel.
 * All input and output goes through `io`, as the workshop's session does.
 */

export interface ChallengeOptions {
  lab: string;
  /** The faults that apply to this lab, in the order offered. */
  choices: readonly Fault[];
  /** The fault put in, as recorded in the lab's state. */
  plan: FaultPlan;
  io: SessionIO;
  /** Is the fault gone from the live kernel? */
  fixed: () => Promise<boolean>;
  /** Undo what is left of the fault (the lab's own repair), at the end. */
  repair: () => Promise<void>;
  /** The record changed (a diagnosis, a hint, a check): save it, so an instructor sees the challenge while it runs. */
  onChange?: (rec: ChallengeRecord) => void;
  style?: Style;
  width?: number;
}

export interface ChallengeRecord {
  fault: string;
  host: string;
  /** `in-progress` until it ends (a record left so is a challenge whose process was killed). */
  outcome: 'in-progress' | 'fixed' | 'gave-up' | 'stopped';
  /** The learner named the fault and its host right. */
  diagnosed: boolean;
  /** Diagnoses given (fault and host), right or wrong. */
  attempts: number;
  /** `check`s of a fix that was not there yet. */
  fixChecks: number;
  hints: number;
  /** When it started: with the lab, what identifies the challenge among the saved ones. */
  at: string;
}

/** The host the fault was put on: where its first break step ran. Pure. */
export const faultHost = (plan: FaultPlan): string => plan.breakSteps[0]?.host ?? '';

const QUIT = new Set(['quit', 'q', 'exit', ':q']);
const HINT = new Set(['hint', 'h', '?']);
const GIVE_UP = new Set(['skip', 'give up', 'giveup']);
const CHECK = new Set(['check', 'fixed', 'done']);

export async function runChallenge(o: ChallengeOptions): Promise<ChallengeRecord> {
  const st = o.style ?? plainStyle;
  const width = o.width ?? 80;
  const say = (t = '') => o.io.write(`${t}\n`);
  const fault = o.choices.find((f) => f.name === o.plan.fault);
  const host = faultHost(o.plan);
  const rec: ChallengeRecord = { fault: o.plan.fault, host, outcome: 'in-progress', diagnosed: false, attempts: 0, fixChecks: 0, hints: 0, at: new Date().toISOString() };
  const hints = [
    `Start with: lab verify ${o.lab}   and   lab workshop ${o.lab} --check: which step fails, and what was seen instead?`,
    fault ? `It is one of these, where it applies: ${fault.where}.` : 'Compare what each host does with what kube-proxy and the pod network should have set up.',
    `Look on ${host}: lab exec ${o.lab} ${host} -- ...`,
  ];
  const changed = () => o.onChange?.({ ...rec });
  const nextHint = () => {
    const h = hints[Math.min(rec.hints++, hints.length - 1)]!;
    changed();
    return h;
  };
  const giveUp = async () => {
    say(`${st.yellow('the fault was')}: ${o.plan.fault} (${o.plan.summary})`);
    await o.repair();
    say(`lab ${o.lab} repaired.`);
    rec.outcome = 'gave-up';
    changed();
    return rec;
  };
  changed();

  say(st.bold(`Break and fix: lab ${o.lab}`));
  say(wrap(`Something in lab ${o.lab} has just been broken, the way real clusters break. Find it with the lab's tools (lab verify, lab workshop ${o.lab} --check, lab rules, lab conntrack, lab trace, lab capture, lab exec ${o.lab} <host> -- <command>), then say which fault it is and on which host. Words: hint, skip (show the fault and repair it), quit (leave it broken; lab repair ${o.lab} undoes it).`, width, ''));
  say('The faults it may be:');
  o.choices.forEach((f, i) => say(`  ${String(i + 1).padStart(2)}. ${st.bold(f.name)}: ${f.description}`));

  // 1. which fault
  for (;;) {
    const a = (await o.io.ask('fault> '))?.trim();
    if (a === undefined || QUIT.has(a.toLowerCase())) return stopped(o, rec, say);
    if (!a) continue;
    if (HINT.has(a.toLowerCase())) { say(st.dim(`hint: ${nextHint()}`)); continue; }
    if (GIVE_UP.has(a.toLowerCase())) return giveUp();
    const named = matchDiagnosis(a, o.choices);
    if (!named) { say(`no fault of the list matches "${a}": give its number or its name`); continue; }
    rec.attempts++;
    changed();
    if (named.name === o.plan.fault) { say(st.green(`right: ${named.name}.`)); break; }
    say(`${st.red('not that one')}: ${named.name} is not what is broken. ${st.dim(`hint: ${nextHint()}`)}`);
  }
  // 2. which host
  for (;;) {
    const a = (await o.io.ask('host> '))?.trim();
    if (a === undefined || QUIT.has(a.toLowerCase())) return stopped(o, rec, say);
    if (!a) continue;
    if (HINT.has(a.toLowerCase())) { say(st.dim(`hint: ${hints[0]} The failing steps name where the packet stopped.`)); rec.hints++; changed(); continue; }
    if (GIVE_UP.has(a.toLowerCase())) return giveUp();
    rec.attempts++;
    if (a.toLowerCase() === host.toLowerCase()) {
      rec.diagnosed = true;
      changed();
      say(st.green(`right: on ${host}.`));
      break;
    }
    changed();
    say(`${st.red('not there')}: ${o.plan.fault} is not on ${a}.`);
  }
  // 3. the fix, checked against the live kernel
  say(wrap(`Now fix it with real commands: lab exec ${o.lab} ${host} -- <command>. Type check when you think it is fixed.`, width, ''));
  for (;;) {
    const a = (await o.io.ask('fix> '))?.trim();
    if (a === undefined || QUIT.has(a.toLowerCase())) return stopped(o, rec, say);
    if (!a) continue;
    if (HINT.has(a.toLowerCase())) { say(st.dim(`hint: the fault is ${o.plan.summary}: put back what a healthy ${host} has.`)); rec.hints++; changed(); continue; }
    if (GIVE_UP.has(a.toLowerCase())) return giveUp();
    if (!CHECK.has(a.toLowerCase())) { say(`run your commands in another terminal (lab exec ${o.lab} ${host} -- ...), then type check`); continue; }
    if (await o.fixed()) {
      say(st.green(`fixed: the live kernel of ${host} is healthy again.`));
      await o.repair(); // whatever the fault changed beside its symptom (a narrowed port range) goes too
      rec.outcome = 'fixed';
      changed();
      say(`lab verify ${o.lab} should pass again.`);
      return rec;
    }
    rec.fixChecks++;
    changed();
    say(`${st.red('still broken')}: ${host}'s kernel still shows the fault. ${st.dim('(hint gives a clue)')}`);
  }
}

function stopped(o: ChallengeOptions, rec: ChallengeRecord, say: (t?: string) => void): ChallengeRecord {
  say(`stopped; the fault stays in lab ${o.lab} (lab repair ${o.lab} undoes it).`);
  rec.outcome = 'stopped';
  o.onChange?.({ ...rec });
  return rec;
}

/** The learner's challenge records: ~/.kube-packet-lab/workshop/<lab>.challenges.json, one entry per challenge. */
export const challengeFile = (lab: string, dir = workshopDir()) => join(dir, `${lab}.challenges.json`);

export function readChallenges(lab: string, dir = workshopDir()): ChallengeRecord[] {
  try {
    const v = JSON.parse(readFileSync(challengeFile(lab, dir), 'utf8')) as unknown;
    return Array.isArray(v) ? (v as ChallengeRecord[]) : [];
  } catch {
    return [];
  }
}

/** Save a challenge's record: a new one is added, one saved before (same start) is replaced. */
export function saveChallenge(lab: string, rec: ChallengeRecord, dir = workshopDir()): void {
  mkdirSync(dir, { recursive: true });
  const file = challengeFile(lab, dir);
  const tmp = `${file}.${process.pid}.tmp`;
  const others = readChallenges(lab, dir).filter((r) => !(r.at === rec.at && r.fault === rec.fault));
  writeFileSync(tmp, `${JSON.stringify([...others, rec], null, 2)}\n`);
  renameSync(tmp, file);
}

/** What an instructor sees of a lab's latest challenge. */
export interface ChallengeView {
  fault: string;
  host: string;
  outcome: ChallengeRecord['outcome'];
  /** The learner has not found the fault yet, nor been shown it. */
  hidden: boolean;
  solved: boolean;
  attempts: number;
  fixChecks: number;
  hints: number;
  at: string;
}

/**
 * The latest challenge of a lab, from its saved records. Pure. A record still `in-progress` whose
 * fault is no longer in the lab (`faultsIn`) ended without saying so (killed; repaired by hand): `stopped`.
 */
export function latestChallenge(records: readonly ChallengeRecord[], faultsIn: readonly string[]): ChallengeView | undefined {
  const r = records.at(-1);
  if (!r) return undefined;
  const outcome = r.outcome === 'in-progress' && !faultsIn.includes(r.fault) ? 'stopped' : r.outcome;
  const diagnosed = r.diagnosed ?? r.outcome === 'fixed';
  return { fault: r.fault, host: r.host, outcome, hidden: !diagnosed && r.outcome !== 'gave-up', solved: r.outcome === 'fixed', attempts: r.attempts, fixChecks: r.fixChecks, hints: r.hints, at: r.at };
}
