import { ExitCode, LabError } from '../errors.js';
import { foreignNamespaceFiles } from '../kernel/apply.js';
import type { ConntrackEntry } from '../kernel/conntrack.js';
import { readConntrack } from '../kernel/readers.js';
import { preflight, requireRoot } from '../kernel/preflight.js';
import { podPorts } from '../plan/endpoints.js';
import { healthCheckServices } from '../plan/kube-proxy/health.js';
import { planPods, planWorkloads } from '../plan/plan.js';
import {
  emptyChanges,
  endpointsDiff,
  endpointsView,
  groupMembers,
  planScale,
  recordReadiness,
  recordScale,
  applyPodChanges,
  withScale,
  type EndpointsView,
} from '../plan/scale.js';
import { withLabLock } from '../state/lock.js';
import { LabStore } from '../state/store.js';
import { namespaceName } from '../topology/names.js';
import { onInterrupt } from '../util/interrupt.js';
import type { Pod, Topology } from '../topology/schema.js';
import { provision, removeLeftoverPods, removePods } from './provision.js';
import { syncHealthChecks, type LoadBalancerFollow } from './health.js';
import { deadSpeakers, syncAnnouncements, type AnnouncementSync } from './announcements.js';
import { loadBalancerOf } from '../plan/load-balancer/index.js';
import { reconcileUdpConntrack } from './conntrack-reconcile.js';
import { resyncRules, type NodeResync } from './resync.js';
import { runningLab, type RunningLab } from './running.js';
import { stager, type Stage } from './stages.js';
import { killExplanation, terminatingExplanation, type UdpFlush } from './kill-explanation.js';
import { isServing, stopPodWorkloads } from './workloads.js';

/**
 * Endpoint changes on a running lab, like a real cluster's: pods come and go (`lab scale`),
 * fail their readiness (`lab kill`) or recover (`lab revive`); every node's kube-proxy rules are
 * then resynced, each with one iptables-restore. The lab's state records the changes, so every
 * later command (verify, rules, status, down) sees the lab as it now is.
 */

export interface PodInfo {
  name: string;
  node: string;
  address: string;
}

export interface EndpointChangeResult {
  lab: string;
  endpointsBefore: EndpointsView[];
  endpointsAfter: EndpointsView[];
  /** Per service port, the endpoint addresses that appeared and disappeared. */
  changes: { service: string; added: string[]; removed: string[] }[];
  /** One entry per node: the chains its resync created and deleted, and how long the restore took. */
  rules: NodeResync[];
  /** Health-checked load balancer routes after the change: where the load balancer's probes moved them. */
  loadBalancers: LoadBalancerFollow[];
  /** What MetalLB's speakers announced or withdrew (loadBalancer.mode bgp), and the router's routes after. */
  announced?: AnnouncementSync;
  /** UDP conntrack entries deleted on each node by kube-proxy's reconciler after the sync (none for TCP). */
  udpFlushed: UdpFlush[];
  /** Milliseconds per stage. */
  timings: Record<string, number>;
  ms: number;
}

export interface ScaleResult extends EndpointChangeResult {
  group: string;
  from: number;
  to: number;
  added: (PodInfo & { namespace: string; pid?: number })[];
  removed: PodInfo[];
}

export interface KillResult extends EndpointChangeResult {
  pod: PodInfo;
  /** The workload process was stopped (false with keepRunning: a readiness failure only; false with terminating). */
  stopped: boolean;
  /** The pod is being deleted and serves out its grace period (serving, terminating, not ready). */
  terminating: boolean;
  pids: number[];
  /** Conntrack entries, on any node, whose translation still leads to the pod. */
  existing: { node: string; state: string; original: string; reply: string }[];
  explanation: string[];
}

export interface ReviveResult extends EndpointChangeResult {
  pod: PodInfo;
  /** The workload had to be started again (it had been stopped by lab kill). */
  started: boolean;
  pid?: number;
}

const info = (p: Pod): PodInfo => ({ name: p.name, node: p.node, address: p.address });

/** The lab's lock, taken as root only: a user's EACCES on root's lock file would say nothing useful. */
async function lockedAsRoot<T>(lab: string, verb: string, fn: () => Promise<T>): Promise<T> {
  requireRoot();
  return withLabLock(lab, verb, fn);
}

/** Scale the pods named <group>-<n> to `replicas`, then resync every node's rules. */
export const scale = (lab: string, group: string, replicas: number, opts: { onStage?: (stage: string, ms: number) => void } = {}) =>
  lockedAsRoot(lab, 'scale', () => scaleLocked(lab, group, replicas, opts));
async function scaleLocked(lab: string, group: string, replicas: number, opts: { onStage?: (stage: string, ms: number) => void } = {}): Promise<ScaleResult> {
  const started = performance.now();
  const running = runningLab(lab);
  preflight();
  const store = running.store();
  const before = running.topology;
  await removeLeftoverPods(store, before);
  // Stopped halfway, the pods being added (not yet recorded as the lab's) or removed (recorded as
  // gone) are removed at once, so the lab is what its state says.
  const release = onInterrupt(`finish scale of lab ${lab}`, () => removeLeftoverPods(store, applyPodChanges(running.fileTopology, store.state.podChanges)));
  try {
    return await scaleChange(running, store, group, replicas, started, opts);
  } finally {
    release();
  }
}

async function scaleChange(running: RunningLab, store: LabStore, group: string, replicas: number, started: number, opts: { onStage?: (stage: string, ms: number) => void }): Promise<ScaleResult> {
  const lab = store.lab;
  const before = running.topology;
  const changes = store.state.podChanges ?? emptyChanges();
  const restorable = groupMembers(running.fileTopology, group).filter((p) => changes.removed.includes(p.name));
  const plan = planScale(before, group, replicas, { template: changes.templates[group], restorable });
  const after = withScale(before, plan);
  const timings: Record<string, number> = {};
  const stage = stager(timings, opts.onStage);
  const added: ScaleResult['added'] = [];

  if (plan.add.length > 0) {
    const names = plan.add.map((p) => p.name);
    const sub = planPods(after, names);
    const foreign = foreignNamespaceFiles(sub);
    if (foreign.length > 0) throw new LabError(`${foreign.join(', ')} already exist: remove them first if nothing else uses them`, ExitCode.labState);
    try {
      await provision(sub, store, stage);
    } catch (err) {
      await removePods(store, names);
      throw err;
    }
    for (const p of plan.add) {
      added.push({ ...info(p), namespace: namespaceName(lab, p.name), pid: store.state.processes.find((r) => r.pod === p.name)?.pid });
    }
  }

  // The pods exist (or are about to go): the lab now is `after`. Then kube-proxy notices.
  store.setPodChanges(recordScale(changes, plan));
  const { rules, udpFlushed, loadBalancers, announced } = await syncEndpoints(store, before, after, stage);

  // Endpoints are gone from every node's rules first; then the pods terminate.
  if (plan.remove.length > 0) await stage('remove pods', () => removePods(store, plan.remove.map((p) => p.name)));

  return {
    ...changeResult(lab, before, after, rules, timings, started),
    loadBalancers,
    ...(announced ? { announced } : {}),
    udpFlushed,
    group,
    from: plan.from,
    to: plan.to,
    added,
    removed: plan.remove.map(info),
  };
}

export interface KillOptions {
  /** Fail only the readiness probe: the workload keeps running. */
  keepRunning?: boolean;
  /**
   * The pod is deleted and serves out its grace period: the workload keeps running and answering,
   * its EndpointSlice entry becomes ready=false, serving=true, terminating=true, and kube-proxy
   * uses it only where no ready endpoint is left.
   */
  terminating?: boolean;
}

/**
 * A pod fails: its workload stops (unless keepRunning: then only its readiness probe fails) and
 * it leaves every Service's endpoints; every node's rules are resynced. With terminating, the pod
 * is being deleted instead: it keeps serving and becomes a serving-terminating endpoint.
 * Connections already established keep their conntrack entries - the result lists them.
 */
export const kill = (lab: string, podName: string, opts: KillOptions = {}) => lockedAsRoot(lab, 'kill', () => killLocked(lab, podName, opts));
async function killLocked(lab: string, podName: string, opts: KillOptions = {}): Promise<KillResult> {
  const terminating = !!opts.terminating;
  const { started, store, before, pod, after, timings, stage } = readinessChange(lab, podName, (p) => (terminating ? { ...p, terminating: true } : { ...p, ready: false }));
  if (terminating && pod.terminating) throw new LabError(`pod ${pod.name} of lab ${lab} is already terminating (lab revive ${lab} ${pod.name} undoes it)`, ExitCode.labState);
  await removeLeftoverPods(store, before);
  const keepRunning = opts.keepRunning || terminating;
  let pids: number[] = [];
  if (!keepRunning) {
    // Stopped while the sockets close: recorded as closed (a later revive opens them again, which is harmless if they were not).
    const release = onInterrupt(`record ${pod.name} stopped`, () => store.markStopped(pod.name));
    try {
      await stage('stop workload', async () => {
        pids = await stopPodWorkloads(store, [pod.name]);
        store.markStopped(pod.name);
      });
    } finally {
      release();
    }
  }
  const changed = after.pods.find((p) => p.name === pod.name)!;
  store.setPodChanges(recordReadiness(store.state.podChanges ?? emptyChanges(), pod.name, changed.ready, changed.terminating));
  const { rules, udpFlushed, loadBalancers, announced } = await syncEndpoints(store, before, after, stage);

  const ports = new Set(podPorts(before, pod));
  const existing: KillResult['existing'] = [];
  for (const n of before.nodes) {
    for (const e of await readConntrack(namespaceName(lab, n.name))) {
      if (e.reply.src === pod.address && ports.has(e.reply.sport)) existing.push({ node: n.name, state: e.state, original: tuple(e, 'original'), reply: tuple(e, 'reply') });
    }
  }
  return {
    ...changeResult(lab, before, after, rules, timings, started),
    loadBalancers,
    ...(announced ? { announced } : {}),
    udpFlushed,
    pod: info(pod),
    stopped: !keepRunning,
    terminating,
    pids,
    existing,
    explanation: terminating ? terminatingExplanation(after, pod) : killExplanation(pod, [...ports], existing.map((e) => e.state), udpFlushed, !!opts.keepRunning, after.kubeProxy.mode),
  };
}

/** The pod recovers: its workload is started again if it was stopped, and it becomes an endpoint again. */
export const revive = (lab: string, podName: string) => lockedAsRoot(lab, 'revive', () => reviveLocked(lab, podName));
async function reviveLocked(lab: string, podName: string): Promise<ReviveResult> {
  const { started, store, before, pod, after, timings, stage } = readinessChange(lab, podName, (p) => ({ ...p, ready: true, terminating: false }));
  await removeLeftoverPods(store, before);
  const alive = isServing(store.state, pod.name);
  // A ready pod is nothing to revive, unless a speaker of MetalLB died: the sync below starts it again.
  if (alive && pod.ready && !pod.terminating && deadSpeakers(after, store.state).length === 0) throw new LabError(`pod ${pod.name} of lab ${lab} is ready and its workload runs: nothing to revive (lab kill ${lab} ${pod.name} first)`, ExitCode.labState);
  if (!alive) await provision(planWorkloads(after, [pod.name]), store, renamed(stage, { workloads: 'start workload' }));
  store.setPodChanges(recordReadiness(store.state.podChanges ?? emptyChanges(), pod.name, true, false));
  const { rules, udpFlushed, loadBalancers, announced } = await syncEndpoints(store, before, after, stage);
  const pid = alive ? undefined : store.state.processes.find((p) => p.pod === pod.name)?.pid;
  return { ...changeResult(lab, before, after, rules, timings, started), loadBalancers, ...(announced ? { announced } : {}), udpFlushed, pod: info(pod), started: !alive, pid };
}

/**
 * kube-proxy's reaction to an endpoint change, the one seam every verb goes through: every
 * node's rules resynced, then its conntrack reconciler (v1.32+): stale UDP entries deleted.
 */
export async function syncEndpoints(store: LabStore, before: Topology, after: Topology, stage: Stage) {
  let rules: NodeResync[] = [];
  await stage('rules', async () => {
    rules = await resyncRules(before, after, store);
  });
  let udpFlushed: UdpFlush[] = [];
  await stage('conntrack', async () => void (udpFlushed = await reconcileUdpConntrack(after)));
  // After the sync kube-proxy tells its health check servers the new local endpoint counts.
  let loadBalancers: LoadBalancerFollow[] = [];
  await stage('health checks', async () => void (loadBalancers = await syncHealthChecks(after)));
  // MetalLB watches the same EndpointSlices: its speakers announce or withdraw, the router follows.
  let announced: AnnouncementSync | undefined;
  if (loadBalancerOf(after).announcements(after).length > 0) await stage('announcements', async () => void (announced = await syncAnnouncements(before, after, undefined, store)));
  return { rules, udpFlushed, loadBalancers, ...(announced ? { announced } : {}) };
}

/** A stage runner that reports some stages under other names. */
const renamed =
  (stage: Stage, names: Record<string, string>): Stage =>
  (name, work) =>
    stage(names[name] ?? name, work);

function changeResult(lab: string, before: Topology, after: Topology, rules: NodeResync[], timings: Record<string, number>, started: number): Omit<EndpointChangeResult, 'udpFlushed' | 'loadBalancers'> {
  const endpointsBefore = endpointsView(before);
  const endpointsAfter = endpointsView(after);
  return { lab, endpointsBefore, endpointsAfter, changes: endpointsDiff(endpointsBefore, endpointsAfter), rules, timings, ms: Math.round(performance.now() - started) };
}

/** What kill and revive share: the running lab, the pod, and the topology with the pod's conditions changed. */
function readinessChange(lab: string, podName: string, change: (p: Pod) => Pod) {
  const started = performance.now();
  const running = runningLab(lab);
  preflight();
  const before = running.topology;
  const pod = endpointPod(before, podName);
  const after: Topology = { ...before, pods: before.pods.map((p) => (p.name === pod.name ? change(p) : p)) };
  const timings: Record<string, number> = {};
  return { started, store: running.store(), before, pod, after, timings, stage: stager(timings) };
}

/** A pod of the running lab that backs some Service (it has a workload to kill or revive). */
function endpointPod(t: Topology, name: string): Pod {
  const pod = t.pods.find((p) => p.name === name);
  if (!pod) throw new LabError(`lab "${t.lab}" has no pod "${name}" (pods: ${t.pods.map((p) => p.name).join(', ')})`, ExitCode.badInput);
  if (podPorts(t, pod).length === 0) throw new LabError(`pod "${name}" backs no Service, so it is no endpoint to remove or restore`, ExitCode.badInput);
  return pod;
}

const tuple = (e: ConntrackEntry, side: 'original' | 'reply') => `${e[side].src}:${e[side].sport} > ${e[side].dst}:${e[side].dport}`;
