import { ExitCode, LabError } from '../errors.js';
import { listStates, readState } from '../state/store.js';
import { loadTopology } from '../topology/load.js';
import { displayPath, resolveTopologyPath } from '../topology/paths.js';
import type { Topology } from '../topology/schema.js';
import { runFaultProbes } from './fault-probes.js';
import { faultFixed } from './break.js';
import { checkHealth, notUpReport, type HealthReport } from '../workshop/health.js';
import { availableWorkshops, hasWorkshop, loadWorkshop, scenarioOf, workshopPathFor, type LoadedWorkshop } from '../workshop/load.js';
import { probe, type ProbeResult } from '../workshop/probes.js';
import { newProgress, progressFile, readProgress, resetProgress, score, writeProgress, type Progress, type Score } from '../workshop/progress.js';
import type { Check } from '../workshop/schema.js';
import { runningLab } from './running.js';
import { status } from './status.js';
import { up, type UpOptions } from './up.js';
import { isLabName } from '../topology/names.js';
import { isDeepStrictEqual } from 'node:util';

/**
 * The workshop verb's domain: which lab and which scenario a command means, bringing the lab up,
 * the state a session starts from, the listings and the instructor's health check. The CLI only
 * asks, prints and talks to the terminal.
 */

export interface WorkshopTarget {
  lab: string;
  /** What the learner typed for the scenario (a name or a path), or the running lab's topology path. */
  scenarioRef: string;
  topologyPath: string;
  topology: Topology;
  /** `--set` overrides for bringing the lab up (`--up`); a lab that is up keeps its own. */
  overrides?: Record<string, string>;
}

const looksLikeLabName = isLabName;
const isUp = (lab: string) => readState(lab)?.phase === 'up';

/** Is the lab named otherwise than its topology file's own `lab:` (brought up with --name)? */
const renamed = (t: WorkshopTarget) => t.lab !== loadTopology(t.topologyPath).topology.lab;

/**
 * `lab workshop nodeport` (the lab named by the scenario), `lab workshop ws-test` (a lab that
 * is up, whatever it was built from), `lab workshop nodeport --name ws-test`. `name` is a
 * validated lab name.
 */
export function workshopTarget(arg: string, name?: string, set: Record<string, string> = {}): WorkshopTarget {
  if (!name && looksLikeLabName(arg) && readState(arg)) {
    if (isUp(arg)) {
      const r = runningLab(arg);
      refuseOtherSettings(arg, set);
      return { lab: arg, scenarioRef: r.path, topologyPath: r.path, topology: r.topology };
    }
    const state = readState(arg)!;
    const { topology, path } = loadTopology(state.topologyPath, state.overrides);
    return { lab: arg, scenarioRef: path, topologyPath: path, topology };
  }
  const path = resolveTopologyPath(arg);
  if (name && isUp(name)) {
    const r = runningLab(name);
    if (r.path !== path) {
      throw new LabError(`lab "${name}" runs ${scenarioOf(r.path)}, not ${scenarioOf(path)}: run "lab workshop ${name}"`, ExitCode.badInput);
    }
    refuseOtherSettings(name, set);
    return { lab: name, scenarioRef: arg, topologyPath: r.path, topology: r.topology };
  }
  const { topology } = loadTopology(path, { ...set, ...(name ? { lab: name } : {}) });
  if (isUp(topology.lab) && runningLab(topology.lab).path === path) refuseOtherSettings(topology.lab, set);
  return { lab: topology.lab, scenarioRef: arg, topologyPath: path, topology, overrides: set };
}

/**
 * `--set` on a lab that is up: a lab keeps the settings it was built with (as `lab up` refuses
 * to build it again), so settings that would give another topology are refused, not ignored.
 * Settings the lab already has (the same value, or the file's own) are fine.
 */
function refuseOtherSettings(lab: string, set: Record<string, string>): void {
  if (Object.keys(set).length === 0) return;
  const r = runningLab(lab);
  const asked = loadTopology(r.path, { ...r.state.overrides, ...set }).topology;
  // As JSON both: a topology read back from the lab's cache has no fields set to undefined.
  const plain = (t: Topology) => JSON.parse(JSON.stringify(t)) as unknown;
  if (isDeepStrictEqual(plain(asked), plain(r.fileTopology))) return;
  const fileLab = loadTopology(r.path).topology.lab;
  const has = Object.entries(r.state.overrides).filter(([k]) => k !== 'lab');
  const sets = Object.entries(set).map(([k, v]) => `--set ${k}=${v}`).join(' ');
  throw new LabError(
    `lab "${lab}" is up with other settings (built with ${has.length ? has.map(([k, v]) => `--set ${k}=${v}`).join(' ') : 'no --set'}), and a lab keeps the settings it was built with: ` +
      `run "lab down ${lab}" first, then "lab workshop ${scenarioOf(r.path)}${lab !== fileLab ? ` --name ${lab}` : ''} --up ${sets}"`,
    ExitCode.labState, // as `lab up` of a lab that is up: the lab's state, not the arguments, stands in the way
  );
}

/** The lab `--check` looks at: --name, a lab known by that name, or the lab a scenario makes. */
export function checkedLab(arg: string, name?: string): string | undefined {
  if (name) return name;
  if (looksLikeLabName(arg) && readState(arg)) return arg;
  try {
    return loadTopology(arg).topology.lab;
  } catch {
    return undefined; // the caller takes arg as a lab name
  }
}

/**
 * Make sure the target's workshop exists and its lab is up: with `bringUp`, `lab up` it;
 * otherwise say which command does. Returns whether it brought the lab up.
 */
export async function ensureWorkshopLab(target: WorkshopTarget, bringUp: boolean, onStage?: UpOptions['onStage']): Promise<boolean> {
  if (!hasWorkshop(target.topologyPath)) loadWorkshop(target.topology, target.topologyPath); // throws: names the workshops there are
  if (isUp(target.lab)) return false;
  if (readState(target.lab)) runningLab(target.lab); // throws: a lab that did not finish coming up
  if (!bringUp) {
    const scenario = target.scenarioRef === target.topologyPath ? displayPath(target.topologyPath) : target.scenarioRef;
    const sets = Object.entries(target.overrides ?? {}).map(([k, v]) => ` --set ${k}=${v}`).join('');
    const upCmd = `lab up ${scenario}${renamed(target) ? ` --name ${target.lab}` : ''}${sets}`;
    throw new LabError(`lab "${target.lab}" is not up: run "${upCmd}" first, or add --up`, ExitCode.labState);
  }
  await up(target.topologyPath, { overrides: { ...target.overrides, ...(renamed(target) ? { lab: target.lab } : {}) }, onStage });
  return true;
}

/** What a session of the workshop starts from, and the lab-facing functions it calls. */
export interface WorkshopSessionSetup {
  loaded: LoadedWorkshop;
  /** Every host's name and address, for the workshop's prose. */
  hosts: Map<string, string>;
  progress: Progress;
  probe: (check: Check) => Promise<ProbeResult>;
  save: (p: Progress) => void;
}

export function workshopSession(lab: string, reset: boolean): WorkshopSessionSetup {
  const running = runningLab(lab);
  const loaded = loadWorkshop(running.topology, running.path);
  if (reset) resetProgress(lab);
  const saved = readProgress(lab, loaded.scenario);
  const progress = saved ?? newProgress(lab, loaded.scenario);
  if (!saved) writeProgress(progress);
  return {
    loaded,
    hosts: hostsOf(running.topology),
    progress,
    probe: (check) => probe(check, { lab, topology: running.topology }),
    save: (p) => writeProgress(p),
  };
}

function hostsOf(t: Topology): Map<string, string> {
  const hosts = new Map<string, string>();
  for (const p of t.pods) hosts.set(p.name, p.address);
  for (const n of [...t.nodes, ...t.clients]) hosts.set(n.name, n.address);
  return hosts;
}

export interface WorkshopListing {
  workshops: string[];
  /** Labs that are up, with their scenario and whether it has a workshop. */
  labs: { lab: string; scenario: string; hasWorkshop: boolean }[];
}

export function listWorkshops(): WorkshopListing {
  const workshops = availableWorkshops();
  const labs = listStates()
    .filter((s) => s.phase === 'up')
    .map((s) => ({ lab: s.lab, scenario: scenarioOf(s.topologyPath), hasWorkshop: workshops.includes(scenarioOf(s.topologyPath)) }));
  return { workshops, labs };
}

export interface WorkshopSteps {
  lab: string;
  scenario: string;
  title: string;
  file: string;
  progressFile: string;
  score: Score;
  steps: { id: string; title: string; seed?: string; status: 'correct' | 'skipped' | 'todo' }[];
}

/** The steps of a target's workshop and the learner's progress through them. Reads only. */
export function workshopSteps(target: WorkshopTarget): WorkshopSteps {
  const loaded = loadWorkshop(target.topology, target.topologyPath);
  const saved = readProgress(target.lab, loaded.scenario) ?? newProgress(target.lab, loaded.scenario);
  return {
    lab: target.lab,
    scenario: loaded.scenario,
    title: loaded.workshop.title,
    file: displayPath(workshopPathFor(target.topologyPath)),
    progressFile: progressFile(target.lab),
    score: score(saved, loaded.workshop.steps.map((s) => s.id)),
    steps: loaded.workshop.steps.map((st) => ({ id: st.id, title: st.title, seed: st.seed, status: saved.steps[st.id]?.outcome ?? 'todo' })),
  };
}

/** The instructor's check of an attendee's lab (see lab/workshop/health.ts). */
export async function workshopHealth(lab: string): Promise<HealthReport> {
  const state = readState(lab);
  if (!state || state.phase !== 'up') return notUpReport(lab, state ? `lab ${lab} did not finish coming up` : `lab ${lab} is not up`);
  const running = runningLab(lab);
  const [st] = await status(lab);
  const report = await checkHealth({
    lab,
    since: state.createdAt,
    topologyPath: running.path,
    topology: running.topology,
    namespaces: st?.namespaces ?? [],
    workloads: st?.workloads ?? [],
    daemons: st?.daemons ?? [],
  });
  // A fault lab break put in whose symptom the entry point does not show: its probes name it.
  for (const o of await runFaultProbes(running)) {
    report.checks.push({ name: `${o.probe.from} -> ${o.probe.to} answers (${o.probe.what})`, ok: o.answered === o.sent, detail: o.seen });
  }
  // And the fault itself, read from the live kernel (a fault fixed by hand passes).
  for (const plan of running.state.faults ?? []) {
    const fixed = await faultFixed(lab, plan);
    report.checks.push({ name: `fault ${plan.fault} put in by lab break`, ok: fixed, detail: fixed ? 'fixed in the kernel (lab repair forgets it)' : `still there: ${plan.summary}` });
  }
  report.healthy = report.checks.every((c) => c.ok !== false);
  return report;
}
