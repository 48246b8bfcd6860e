import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * A learner's progress through a workshop, one JSON file per lab:
 *   ~/.kube-packet-lab/workshop/<lab>.json   (LAB_WORKSHOP_DIR overrides the folder)
 * In the home folder rather than beside the lab's state in /run, so it survives
 * `lab down` + `lab up` (an instructor resetting a broken lab) and reboots.
 * Steps are recorded by id, so a workshop file that gains steps keeps old progress valid.
 */

export const workshopDir = () => process.env.LAB_WORKSHOP_DIR ?? join(homedir(), '.kube-packet-lab', 'workshop');
export const progressFile = (lab: string, dir = workshopDir()) => join(dir, `${lab}.json`);

export type StepOutcome = 'correct' | 'skipped';

export interface StepRecord {
  outcome: StepOutcome;
  /** Answers given, right or wrong (commands such as hint are not counted). */
  attempts: number;
  hints: number;
  /** The answer accepted, for the record. */
  answer?: string;
  at: string;
}

export interface Progress {
  version: 1;
  lab: string;
  scenario: string;
  startedAt: string;
  updatedAt: string;
  steps: Record<string, StepRecord>;
}

export function newProgress(lab: string, scenario: string, now = new Date()): Progress {
  const at = now.toISOString();
  return { version: 1, lab, scenario, startedAt: at, updatedAt: at, steps: {} };
}

/** The saved progress, or undefined when there is none (or it is unreadable, or for another scenario). */
export function readProgress(lab: string, scenario: string, dir = workshopDir()): Progress | undefined {
  let p: Progress;
  try {
    p = JSON.parse(readFileSync(progressFile(lab, dir), 'utf8')) as Progress;
  } catch {
    return undefined;
  }
  if (!p || p.version !== 1 || p.scenario !== scenario || typeof p.steps !== 'object' || p.steps === null) return undefined;
  return p;
}

export function writeProgress(p: Progress, dir = workshopDir()): void {
  mkdirSync(dir, { recursive: true });
  const file = progressFile(p.lab, dir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(p, null, 2)}\n`);
  renameSync(tmp, file);
}

export function resetProgress(lab: string, dir = workshopDir()): void {
  rmSync(progressFile(lab, dir), { force: true });
}

export function recordStep(p: Progress, id: string, record: Omit<StepRecord, 'at'>, now = new Date()): Progress {
  const at = now.toISOString();
  return { ...p, updatedAt: at, steps: { ...p.steps, [id]: { ...record, at } } };
}

/** Index of the first step not yet done; steps.length when all are. */
export function nextStepIndex(p: Progress, stepIds: readonly string[]): number {
  const i = stepIds.findIndex((id) => !p.steps[id]);
  return i < 0 ? stepIds.length : i;
}

export interface Score {
  total: number;
  done: number;
  correct: number;
  firstTry: number;
  skipped: number;
}

export function score(p: Progress, stepIds: readonly string[]): Score {
  const recs = stepIds.map((id) => p.steps[id]).filter((r): r is StepRecord => r !== undefined);
  return {
    total: stepIds.length,
    done: recs.length,
    correct: recs.filter((r) => r.outcome === 'correct').length,
    firstTry: recs.filter((r) => r.outcome === 'correct' && r.attempts === 1 && r.hints === 0).length,
    skipped: recs.filter((r) => r.outcome === 'skipped').length,
  };
}
