import { listNamespaces } from '../kernel/netns.js';
import { isOurs } from '../kernel/processes.js';
import { listStates, type LabState } from '../state/store.js';
import { latestChallenge, readChallenges, type ChallengeView } from '../workshop/challenge.js';
import { hasWorkshop, loadWorkshop, scenarioOf } from '../workshop/load.js';
import { nextStepIndex, progressFile, readProgress, score, type Progress } from '../workshop/progress.js';
import { runningLab } from './running.js';

/**
 * `lab class status`: the instructor's view of every lab on the machine. Cheap on purpose (a
 * class is tens of labs): the state files, one listing of the namespaces, the recorded processes
 * by pid and start time, each lab's saved workshop progress and challenge records, and the
 * faults its state records; no command runs in a lab and
 * no request is sent (`lab workshop <lab> --check` is the thorough check of one lab).
 */

export interface ClassWorkshop {
  title: string;
  /** The step the learner is on, counting from 1; total + 1 once every step is done. */
  step: number;
  total: number;
  /** The current step's title, absent once the workshop is done. */
  stepTitle?: string;
  done: number;
  correct: number;
  skipped: number;
  /** Summed over the finished steps (the session records a step's attempts and hints when it ends). */
  attempts: number;
  hints: number;
  /** When the learner last finished a step; absent: not started. */
  updatedAt?: string;
  progressFile: string;
}

export interface ClassLab {
  lab: string;
  scenario: string;
  phase: LabState['phase'];
  since: string;
  healthy: boolean;
  /** What the cheap check found wrong, in words. */
  problems: string[];
  /** The scenario's workshop and this lab's learner in it; absent when the scenario has none. */
  workshop?: ClassWorkshop;
  /** The faults `lab break` (or a challenge) put in and `lab repair` has not undone, by name. */
  faults: string[];
  /** The lab's latest break-and-fix challenge (`lab workshop <lab> --challenge`, or the page's); absent: none yet. */
  challenge?: ChallengeView;
}

function problemsOf(s: LabState, namespaces: Set<string>): string[] {
  if (s.phase !== 'up') return ['did not finish coming up'];
  const problems: string[] = [];
  const missing = s.namespaces.filter((ns) => !namespaces.has(ns));
  if (missing.length) problems.push(`${missing.length} of ${s.namespaces.length} namespaces missing (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''})`);
  if (s.workloadHost && !isOurs(s.workloadHost)) problems.push(`the workload process (pid ${s.workloadHost.pid}) is gone: no pod answers`);
  const deadDaemons = (s.daemons ?? []).filter((d) => !isOurs(d));
  if (deadDaemons.length) problems.push(`${deadDaemons.map((d) => `${d.name} on ${d.host}`).join(', ')} stopped`);
  return problems;
}

/** The learner's place in the workshop, from its saved progress. */
export function workshopPlace(title: string, steps: { id: string; title: string }[], saved: Progress | undefined, file: string): ClassWorkshop {
  const ids = steps.map((st) => st.id);
  const records = saved ? Object.entries(saved.steps).filter(([id]) => ids.includes(id)).map(([, r]) => r) : [];
  const sc = saved ? score(saved, ids) : { total: ids.length, done: 0, correct: 0, skipped: 0, firstTry: 0 };
  const next = saved ? nextStepIndex(saved, ids) : 0;
  return {
    title,
    step: next + 1,
    total: ids.length,
    ...(steps[next] ? { stepTitle: steps[next]!.title } : {}),
    done: sc.done,
    correct: sc.correct,
    skipped: sc.skipped,
    attempts: records.reduce((n, r) => n + r.attempts, 0),
    hints: records.reduce((n, r) => n + r.hints, 0),
    ...(saved && records.length ? { updatedAt: saved.updatedAt } : {}),
    progressFile: file,
  };
}

function workshopOf(s: LabState): ClassWorkshop | undefined {
  if (s.phase !== 'up' || !hasWorkshop(s.topologyPath)) return undefined;
  const running = runningLab(s.lab);
  const { workshop, scenario } = loadWorkshop(running.topology, running.path);
  return workshopPlace(workshop.title, workshop.steps, readProgress(s.lab, scenario), progressFile(s.lab));
}

export async function classStatus(): Promise<ClassLab[]> {
  const namespaces = new Set(await listNamespaces());
  return listStates().map((s) => {
    const problems = problemsOf(s, namespaces);
    let workshop: ClassWorkshop | undefined;
    try {
      workshop = workshopOf(s);
    } catch (err) {
      problems.push(`its workshop cannot be read: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
    const faults = (s.faults ?? []).map((f) => f.fault);
    const challenge = latestChallenge(readChallenges(s.lab), faults);
    return { lab: s.lab, scenario: scenarioOf(s.topologyPath), phase: s.phase, since: s.createdAt, healthy: problems.length === 0, problems, ...(workshop ? { workshop } : {}), faults, ...(challenge ? { challenge } : {}) };
  });
}
