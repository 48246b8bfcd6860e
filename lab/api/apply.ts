import { ExitCode, InputError, LabError } from '../errors.js';
import { foreignNamespaceFiles } from '../kernel/apply.js';
import { preflight, requireRoot } from '../kernel/preflight.js';
import { log } from '../log.js';
import { applyDiff, isEmptyDiff, type ApplyDiff } from '../plan/apply-diff.js';
import { podPorts } from '../plan/endpoints.js';
import { applyNodeChanges } from '../plan/node-changes.js';
import { planPods, planWorkloads } from '../plan/plan.js';
import { withLabLock } from '../state/lock.js';
import type { LabStore } from '../state/store.js';
import { loadTopology } from '../topology/load.js';
import { displayPath } from '../topology/paths.js';
import type { Topology } from '../topology/schema.js';
import { onInterrupt } from '../util/interrupt.js';
import { syncEndpoints } from './pods.js';
import { provision, removePods } from './provision.js';
import type { NodeResync } from './resync.js';
import { runningLab } from './running.js';
import { stager, type Stage } from './stages.js';
import { rememberTopology, topologyKey } from './topology-cache.js';
import { isServing, stopPodWorkloads } from './workloads.js';

export interface ApplyResult {
  lab: string;
  file: string;
  diff: ApplyDiff;
  rules: NodeResync[];
  timings: Record<string, number>;
  ms: number;
}

/**
 * Change a running lab to match an edited topology, as kube-proxy sees the API change: the
 * new pods started, one partial sync per node of exactly the Services whose spec or endpoints
 * changed, then the deleted pods removed. A broken file, one for another lab, or one that changes
 * what only down and up can (nodes, networks, a host's address) changes nothing (exit 2).
 * A failure midway puts the state and the rules back as they were.
 */
export function apply(lab: string, file: string, opts: { onStage?: (stage: string, ms: number) => void } = {}): Promise<ApplyResult> {
  requireRoot();
  return withLabLock(lab, 'apply', async () => {
    const started = performance.now();
    const running = runningLab(lab);
    const loaded = loadTopology(file);
    const before = running.topology;
    // The nodes `lab node` changed stay as they are: apply changes Services and pods only.
    const after = applyNodeChanges(loaded.topology, running.state.nodeChanges);
    const diff = applyDiff(before, after);
    if (diff.refused.length > 0) {
      const problems = diff.refused.map((message) => ({ file: displayPath(loaded.path), field: '', message: `${message}: lab apply changes Services and pods only; for this, lab down ${lab} and lab up ${displayPath(loaded.path)}` }));
      throw new InputError(problems);
    }
    const timings: Record<string, number> = {};
    const result = { lab, file: displayPath(loaded.path), diff, rules: [] as NodeResync[], timings };
    if (isEmptyDiff(diff)) return { ...result, ms: Math.round(performance.now() - started) };
    preflight();
    const store = running.store();
    const stage = stager(timings, opts.onStage);
    const rules = await applyChange(store, before, after, diff, { path: loaded.path, applied: loaded.topology, was: running.fileTopology }, stage);
    return { ...result, rules, ms: Math.round(performance.now() - started) };
  });
}

/** `files`: the applied file's path and topology, and the file topology the lab ran before (each the lab's own copy in turn). */
async function applyChange(store: LabStore, before: Topology, after: Topology, diff: ApplyDiff, files: { path: string; applied: Topology; was: Topology }, stage: Stage): Promise<NodeResync[]> {
  const { path } = files;
  const saved = { path: store.state.topologyPath, overrides: { ...store.state.overrides }, podChanges: store.state.podChanges, key: store.topologyKey, proxySync: store.state.proxySync };
  const added = diff.pods.added;
  if (added.length > 0) {
    const sub = planPods(after, added);
    const foreign = foreignNamespaceFiles(sub);
    if (foreign.length > 0) throw new LabError(`${foreign.join(', ')} already exist: remove them first if nothing else uses them`, ExitCode.labState);
  }
  const restore = async () => {
    store.state.topologyPath = saved.path;
    store.state.overrides = saved.overrides;
    if (saved.podChanges) store.state.podChanges = saved.podChanges;
    store.topologyKey = saved.key;
    rememberTopology(store.lab, { topology: files.was, path: saved.path }, saved.overrides);
    // The rules untouched: as they were synced; touched, the sync back leaves the next one full (needFullSync).
    if (!syncing) store.state.proxySync = saved.proxySync;
    store.save();
    if (added.length > 0) await removePods(store, added);
    // Workloads back as they were: restarted ones on their old ports, revived ones stopped again.
    if (workloadsChanged) {
      await stopPodWorkloads(store, [...diff.pods.restarted, ...revived]);
      for (const pod of revived) store.markStopped(pod);
      const hadPorts = (name: string) => before.pods.some((p) => p.name === name && podPorts(before, p).length > 0);
      store.forgetPods(diff.pods.restarted.filter((n) => !hadPorts(n)), [], []);
      const back = diff.pods.restarted.filter(hadPorts);
      if (back.length > 0) await provision(planWorkloads(before, back), store, stage);
    }
  };
  // Pods whose workload was stopped (lab kill) start again, as lab revive does.
  const revived = after.pods.filter((p) => !added.includes(p.name) && !diff.pods.restarted.includes(p.name) && podPorts(after, p).length > 0 && !isServing(store.state, p.name)).map((p) => p.name);
  let workloadsChanged = false;
  // Interrupted or failed midway: back to the old file and pods, and the old rules where the sync had begun.
  let syncing = false;
  const undo = async () => {
    await restore();
    if (syncing) await syncEndpoints(store, after, before, stage).catch((err) => log.warn({ lab: store.lab, err: String(err) }, 'apply: the sync back failed; the next change syncs in full'));
  };
  const release = onInterrupt(`undo apply of lab ${store.lab}`, undo);
  let rules: NodeResync[];
  try {
    if (added.length > 0) await provision(planPods(after, added), store, stage);
    // Pods that must listen on other ports restart; stopped ones start.
    const restart = [...diff.pods.restarted, ...revived];
    if (restart.length > 0) {
      workloadsChanged = true;
      await stopPodWorkloads(store, diff.pods.restarted);
      await provision(planWorkloads(after, restart), store, stage);
    }
    store.switchTopology(path, topologyKey(path, {}));
    // The lab's own copy is the applied file from now on (undone with the rest if the apply fails).
    rememberTopology(store.lab, { topology: files.applied, path }, {});
    // A test hook, as up's LAB_CRASH_AFTER: a failure after pods were added and the state switched, before the sync.
    if (process.env.LAB_APPLY_FAIL === 'sync') throw new LabError('apply failed before the sync (LAB_APPLY_FAIL=sync, a test hook)', ExitCode.commandFailed);
    syncing = true;
    rules = (await syncEndpoints(store, before, after, stage)).rules;
  } catch (err) {
    log.warn({ lab: store.lab, err: String(err) }, 'apply failed: putting the lab back as it was');
    await undo();
    throw err;
  } finally {
    release();
  }
  // Endpoints are gone from every node's rules first; then the pods terminate.
  if (diff.pods.removed.length > 0) await stage('remove pods', () => removePods(store, diff.pods.removed));
  return rules;
}
