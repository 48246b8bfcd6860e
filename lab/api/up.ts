import { ExitCode, LabError } from '../errors.js';
import { foreignNamespaceFiles } from '../kernel/apply.js';
import { listNamespaces } from '../kernel/netns.js';
import { preflight } from '../kernel/preflight.js';
import { planLab, type Plan } from '../plan/plan.js';
import { LabStore, readState, type LabState } from '../state/store.js';
import { loadTopology } from '../topology/load.js';
import { down } from './down.js';
import { provision } from './provision.js';
import { stager } from './stages.js';

export interface UpOptions {
  overrides?: Record<string, string>;
  /** Called as each stage finishes, for progress output. */
  onStage?: (stage: string, ms: number) => void;
}

export interface UpResult {
  lab: string;
  plan: Plan;
  state: LabState;
  timings: Record<string, number>;
}

/**
 * Build a lab: validate, plan, then apply to the kernel stage by stage.
 * If any stage fails, everything created so far is removed before the error is raised.
 */
export async function up(topologyRef: string, opts: UpOptions = {}): Promise<UpResult> {
  const overrides = opts.overrides ?? {};
  const { topology, path } = loadTopology(topologyRef, overrides);
  preflight();
  const plan = planLab(topology);
  const lab = topology.lab;

  const existing = await listNamespaces();
  const clash = plan.namespaces.filter((n) => existing.includes(n.ns)).map((n) => n.ns);
  if (readState(lab) || clash.length > 0) {
    throw new LabError(
      `lab "${lab}" is already up${clash.length ? ` (namespaces ${clash.join(', ')})` : ''}: run "lab down ${lab}" first, or pick another name with --name`,
      ExitCode.labState,
    );
  }

  const foreign = foreignNamespaceFiles(plan);
  if (foreign.length > 0) {
    throw new LabError(`${foreign.join(', ')} already exist${foreign.length === 1 ? 's' : ''}: the lab would write and later remove these; remove them first if nothing else uses them`, ExitCode.labState);
  }

  // Record intent first: a crash after this point leaves a state file `down` can follow.
  const store = LabStore.create({
    lab,
    topologyPath: path,
    overrides,
    createdAt: new Date().toISOString(),
    phase: 'creating',
    namespaces: plan.namespaces.map((n) => n.ns),
    processes: [],
    // Recorded before they exist, like the namespaces: `down` removes them even after a crash.
    files: plan.files.map((f) => f.dir),
  });

  const timings: Record<string, number> = {};
  const stage = stager(timings, (name, ms) => {
    opts.onStage?.(name, ms);
    // Fault injection for the crash-recovery tests: die hard, as a killed `up` would.
    if (process.env.LAB_CRASH_AFTER === name) process.kill(process.pid, 'SIGKILL');
  });
  try {
    await provision(plan, store, stage);
  } catch (err) {
    await down(lab).catch(() => undefined);
    throw err;
  }
  store.markUp();
  return { lab, plan, state: store.state, timings };
}
