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
  style?: Style;
  width?: number;
}

export interface ChallengeRecord {
  fault: string;
  host: string;
  outcome: 'fixed' | 'gave-up' | 'stopped';
  /** Diagnoses given (fault and host), right or wrong. */
  attempts: number;
  /** `check`s of a fix that was not there yet. */
  fixChecks: number;
  hints: number;
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
  const rec: ChallengeRecord = { fault: o.plan.fault, host, outcome: 'stopped', attempts: 0, fixChecks: 0, hints: 0, at: new Date().toISOString() };
  const hints = [
    `Start with: lab verify ${o.lab}   and   lab workshop ${o.lab} --check: which step fails, and what was seen instead?`,
    fault ? `It is one of these, where it applies: ${fault.where}.` : 'Compare what each host does with what kube-proxy and the pod network should have set up.',
    `Look on ${host}: lab exec ${o.lab} ${host} -- ...`,
  ];
  const nextHint = () => hints[Math.min(rec.hints++, hints.length - 1)]!;
  const giveUp = async () => {
    say(`${st.yellow('the fault was')}: ${o.plan.fault} (${o.plan.summary})`);
    await o.repair();
    say(`lab ${o.lab} repaired.`);
    rec.outcome = 'gave-up';
    return rec;
  };

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
    if (named.name === o.plan.fault) { say(st.green(`right: ${named.name}.`)); break; }
    say(`${st.red('not that one')}: ${named.name} is not what is broken. ${st.dim(`hint: ${nextHint()}`)}`);
  }
  // 2. which host
  for (;;) {
    const a = (await o.io.ask('host> '))?.trim();
    if (a === undefined || QUIT.has(a.toLowerCase())) return stopped(o, rec, say);
    if (!a) continue;
    if (HINT.has(a.toLowerCase())) { say(st.dim(`hint: ${hints[0]} The failing steps name where the packet stopped.`)); rec.hints++; continue; }
    if (GIVE_UP.has(a.toLowerCase())) return giveUp();
    rec.attempts++;
    if (a.toLowerCase() === host.toLowerCase()) { say(st.green(`right: on ${host}.`)); break; }
    say(`${st.red('not there')}: ${o.plan.fault} is not on ${a}.`);
  }
  // 3. the fix, checked against the live kernel
  say(wrap(`Now fix it with real commands: lab exec ${o.lab} ${host} -- <command>. Type check when you think it is fixed.`, width, ''));
  for (;;) {
    const a = (await o.io.ask('fix> '))?.trim();
    if (a === undefined || QUIT.has(a.toLowerCase())) return stopped(o, rec, say);
    if (!a) continue;
    if (HINT.has(a.toLowerCase())) { say(st.dim(`hint: the fault is ${o.plan.summary}: put back what a healthy ${host} has.`)); rec.hints++; continue; }
    if (GIVE_UP.has(a.toLowerCase())) return giveUp();
    if (!CHECK.has(a.toLowerCase())) { say(`run your commands in another terminal (lab exec ${o.lab} ${host} -- ...), then type check`); continue; }
    if (await o.fixed()) {
      say(st.green(`fixed: the live kernel of ${host} is healthy again.`));
      await o.repair(); // whatever the fault changed beside its symptom (a narrowed port range) goes too
      rec.outcome = 'fixed';
      say(`lab verify ${o.lab} should pass again.`);
      return rec;
    }
    rec.fixChecks++;
    say(`${st.red('still broken')}: ${host}'s kernel still shows the fault. ${st.dim('(hint gives a clue)')}`);
  }
}

function stopped(o: ChallengeOptions, rec: ChallengeRecord, say: (t?: string) => void): ChallengeRecord {
  say(`stopped; the fault stays in lab ${o.lab} (lab repair ${o.lab} undoes it).`);
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

export function saveChallenge(lab: string, rec: ChallengeRecord, dir = workshopDir()): void {
  mkdirSync(dir, { recursive: true });
  const file = challengeFile(lab, dir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify([...readChallenges(lab, dir), rec], null, 2)}\n`);
  renameSync(tmp, file);
}
