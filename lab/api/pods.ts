import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';
import {
  configureNamespaces,
  createNamespaces,
  foreignNamespaceFiles,
  setSysctls,
  startWorkloads,
  waitForLinks,
  writeNamespaceFiles,
} from '../kernel/apply.js';
import { deleteUdpEntries, type ConntrackEntry } from '../kernel/conntrack.js';
import { readConntrack } from '../kernel/readers.js';
import { deleteNamespaces, namespacePids } from '../kernel/netns.js';
import { preflight } from '../kernel/preflight.js';
import { isAlive, processCmdline, processStartTime, stopProcesses } from '../kernel/processes.js';
import { podPorts, servicePorts } from '../plan/endpoints.js';
import { planPods } from '../plan/plan.js';
import {
  emptyChanges,
  endpointsDiff,
  endpointsView,
  groupMembers,
  planScale,
  recordReadiness,
  recordScale,
  withScale,
  type EndpointsView,
} from '../plan/scale.js';
import { labDir, writeState, type LabState, type ProcessRecord } from '../state/store.js';
import { withLabLock } from '../state/lock.js';
import { namespaceName } from '../topology/names.js';
import type { Pod, Topology } from '../topology/schema.js';
import { WORKLOAD_MARKER } from '../workload/marker.js';
import { resyncRules, type NodeResync } from './resync.js';
import { stager } from './stages.js';
import { runningLab } from './running.js';

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
  /** UDP conntrack entries of removed endpoints deleted on each node, as kube-proxy does (none for TCP). */
  udpFlushed: { node: string; endpoint: string; entries: number }[];
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
  /** The workload process was stopped (false with keepRunning: a readiness failure only). */
  stopped: boolean;
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

/** Scale the pods named <group>-<n> to `replicas`, then resync every node's rules. */
export const scale = (lab: string, group: string, replicas: number, opts: { onStage?: (stage: string, ms: number) => void } = {}) =>
  withLabLock(lab, 'scale', () => scaleLocked(lab, group, replicas, opts));
async function scaleLocked(lab: string, group: string, replicas: number, opts: { onStage?: (stage: string, ms: number) => void } = {}): Promise<ScaleResult> {
  const started = performance.now();
  const running = runningLab(lab);
  preflight();
  const { state } = running;
  const before = running.topology;
  const changes = state.podChanges ?? emptyChanges();
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
    const podNamespaces = sub.namespaces.filter((n) => n.role === 'pod').map((n) => n.ns);
    // Recorded before they exist, as `up` does: a crash from here on leaves nothing `down` misses.
    state.namespaces.push(...podNamespaces);
    state.files.push(...sub.files.map((f) => f.dir));
    writeState(state);
    let processes: ProcessRecord[] = [];
    try {
      await stage('namespaces', () => createNamespaces(sub));
      await stage('links', () => configureNamespaces(sub));
      await stage('sysctls', () => setSysctls(sub));
      if (sub.files.length > 0) await stage('pod resolv.conf', async () => writeNamespaceFiles(sub));
      await stage('workloads', async () => {
        processes = await startWorkloads(sub, join(labDir(lab), 'pods'));
      });
      await stage('links ready', () => waitForLinks(sub));
    } catch (err) {
      await removePods(state, names, processes);
      writeState(state);
      throw err;
    }
    state.processes.push(...processes);
    for (const p of plan.add) {
      added.push({ ...info(p), namespace: namespaceName(lab, p.name), pid: processes.find((r) => r.pod === p.name)?.pid });
    }
  }

  // The pods exist (or are about to go): the lab now is `after`. Then kube-proxy notices.
  state.podChanges = recordScale(changes, plan);
  writeState(state);
  let rules: NodeResync[] = [];
  await stage('rules', async () => {
    rules = await resyncRules(after);
  });
  const udpFlushed = await flushUdpEndpoints(before, after);

  if (plan.remove.length > 0) {
    // Endpoints are gone from every node's rules first; then the pods terminate.
    await stage('remove pods', () => removePods(state, plan.remove.map((p) => p.name)));
    writeState(state);
  }

  return {
    ...changeResult(lab, before, after, rules, timings, started),
    udpFlushed,
    group,
    from: plan.from,
    to: plan.to,
    added,
    removed: plan.remove.map(info),
  };
}

/**
 * A pod fails: its workload stops (unless keepRunning: then only its readiness probe fails) and
 * it leaves every Service's endpoints; every node's rules are resynced. Connections already
 * established keep their conntrack entries - the result lists them.
 */
export const kill = (lab: string, podName: string, opts: { keepRunning?: boolean } = {}) => withLabLock(lab, 'kill', () => killLocked(lab, podName, opts));
async function killLocked(lab: string, podName: string, opts: { keepRunning?: boolean } = {}): Promise<KillResult> {
  const { started, state, before, pod, after, timings, stage } = readinessChange(lab, podName, false);
  const pids = ourProcesses(state, [pod.name]);
  if (!opts.keepRunning) await stage('stop workload', () => stopPodProcesses(state, [pod.name]));
  state.podChanges = recordReadiness(state.podChanges ?? emptyChanges(), pod.name, false);
  writeState(state);
  let rules: NodeResync[] = [];
  await stage('rules', async () => {
    rules = await resyncRules(after);
  });
  const udpFlushed = await flushUdpEndpoints(before, after);

  const ports = new Set(podPorts(before, pod));
  const existing: KillResult['existing'] = [];
  for (const n of before.nodes) {
    for (const e of await readConntrack(namespaceName(lab, n.name))) {
      if (e.reply.src === pod.address && ports.has(e.reply.sport)) existing.push({ node: n.name, state: e.state, original: tuple(e, 'original'), reply: tuple(e, 'reply') });
    }
  }
  const addr = `${pod.address}:${[...ports].join(',')}`;
  const explanation = [
    `New connections: every node's KUBE-SVC (and KUBE-SVL) chains no longer list ${addr}, so from now on no new connection is translated to ${pod.name}.`,
    `Existing connections: rules decide only a connection's first packet (conntrack state NEW). Conntrack remembers each connection's translation and applies it to every later packet, so the ${existing.length} ${existing.length === 1 ? 'entry' : 'entries'} above keep their DNAT to ${addr} until the connection ends or the entry expires (TIME_WAIT 120 s, ESTABLISHED up to 5 days); kube-proxy flushes such entries for UDP only.`,
    ...(udpFlushed.some((f) => f.entries > 0) ? [`UDP: as kube-proxy does, the lab deleted the ${udpFlushed.reduce((n, f) => n + f.entries, 0)} UDP conntrack entries of ${pod.name}'s UDP ports, so the next datagram of those flows is balanced anew.`] : []),
    opts.keepRunning
      ? `The workload still runs (a failed readiness probe): established connections keep being served by ${pod.name}.`
      : `The workload was stopped: ${pod.name}'s kernel closed its connections, and a late packet of an old connection still goes to ${pod.address}, which now answers with a reset.`,
  ];
  return {
    ...changeResult(lab, before, after, rules, timings, started),
    udpFlushed,
    pod: info(pod),
    stopped: !opts.keepRunning,
    pids: opts.keepRunning ? [] : pids,
    existing,
    explanation,
  };
}

/** The pod recovers: its workload is started again if it was stopped, and it becomes an endpoint again. */
export const revive = (lab: string, podName: string) => withLabLock(lab, 'revive', () => reviveLocked(lab, podName));
async function reviveLocked(lab: string, podName: string): Promise<ReviveResult> {
  const { started, state, before, pod, after, timings, stage } = readinessChange(lab, podName, true);
  let pid: number | undefined;
  const alive = ourProcesses(state, [pod.name]).length > 0;
  if (alive && pod.ready) throw new LabError(`pod ${pod.name} of lab ${lab} is ready and its workload runs: nothing to revive (lab kill ${lab} ${pod.name} first)`, ExitCode.labState);
  if (!alive) {
    await stage('start workload', async () => {
      const [record] = await startWorkloads(planPods(after, [pod.name]), join(labDir(lab), 'pods'));
      if (record) {
        state.processes = [...state.processes.filter((p) => p.pod !== pod.name), record];
        pid = record.pid;
      }
    });
  }
  state.podChanges = recordReadiness(state.podChanges ?? emptyChanges(), pod.name, true);
  writeState(state);
  let rules: NodeResync[] = [];
  await stage('rules', async () => {
    rules = await resyncRules(after);
  });
  return { ...changeResult(lab, before, after, rules, timings, started), udpFlushed: [], pod: info(pod), started: !alive, pid };
}

/** kube-proxy's conntrack cleanup after a sync: entries of UDP endpoints that are gone, on every node. */
async function flushUdpEndpoints(before: Topology, after: Topology): Promise<EndpointChangeResult['udpFlushed']> {
  const remaining = new Set(servicePorts(after).filter((sp) => sp.protocol === 'udp').flatMap((sp) => sp.endpoints.map((e) => e.address)));
  const gone = [...new Set(servicePorts(before).filter((sp) => sp.protocol === 'udp').flatMap((sp) => sp.endpoints.map((e) => e.address)))].filter((a) => !remaining.has(a));
  const out: EndpointChangeResult['udpFlushed'] = [];
  for (const endpoint of gone) {
    const [ip, port] = endpoint.split(':') as [string, string];
    for (const n of before.nodes) {
      const entries = await deleteUdpEntries(namespaceName(before.lab, n.name), ip, Number(port));
      out.push({ node: n.name, endpoint, entries });
    }
  }
  return out;
}

function changeResult(lab: string, before: Topology, after: Topology, rules: NodeResync[], timings: Record<string, number>, started: number): Omit<EndpointChangeResult, 'udpFlushed'> {
  const endpointsBefore = endpointsView(before);
  const endpointsAfter = endpointsView(after);
  return { lab, endpointsBefore, endpointsAfter, changes: endpointsDiff(endpointsBefore, endpointsAfter), rules, timings, ms: Math.round(performance.now() - started) };
}

/** A pod of the running lab that backs some Service (it has a workload to kill or revive). */
/** What kill and revive share: the running lab, the pod, and the topology with its readiness flipped. */
function readinessChange(lab: string, podName: string, ready: boolean) {
  const started = performance.now();
  const running = runningLab(lab);
  preflight();
  const before = running.topology;
  const pod = endpointPod(before, podName);
  const after: Topology = { ...before, pods: before.pods.map((p) => (p.name === pod.name ? { ...p, ready } : p)) };
  const timings: Record<string, number> = {};
  return { started, state: running.state, before, pod, after, timings, stage: stager(timings) };
}

function endpointPod(t: Topology, name: string): Pod {
  const pod = t.pods.find((p) => p.name === name);
  if (!pod) throw new LabError(`lab "${t.lab}" has no pod "${name}" (pods: ${t.pods.map((p) => p.name).join(', ')})`, ExitCode.badInput);
  if (podPorts(t, pod).length === 0) throw new LabError(`pod "${name}" backs no Service, so it is no endpoint to remove or restore`, ExitCode.badInput);
  return pod;
}

const tuple = (e: ConntrackEntry, side: 'original' | 'reply') => `${e[side].src}:${e[side].sport} > ${e[side].dst}:${e[side].dport}`;

/** Live processes the lab recorded for these pods (the start time tells ours from a reused pid). */
function ourProcesses(state: LabState, pods: string[]): number[] {
  return state.processes.filter((p) => pods.includes(p.pod) && isAlive(p.pid) && processStartTime(p.pid) === p.startTime).map((p) => p.pid);
}

/** Stop these pods' workloads: recorded pids that are still ours, and any lab workload inside their namespaces. */
async function stopPodProcesses(state: LabState, pods: string[], extra: ProcessRecord[] = []): Promise<void> {
  const pids = new Set(ourProcesses({ ...state, processes: [...state.processes, ...extra] }, pods));
  const inside = await Promise.all(pods.map((p) => namespacePids(namespaceName(state.lab, p))));
  for (const pid of inside.flat()) if (processCmdline(pid).includes(WORKLOAD_MARKER)) pids.add(pid);
  await stopProcesses([...pids]);
}

/** Delete pods: their processes, namespaces (which takes their veth pairs along) and files; forget them in the state. */
async function removePods(state: LabState, pods: string[], extra: ProcessRecord[] = []): Promise<void> {
  await stopPodProcesses(state, pods, extra);
  const namespaces = pods.map((p) => namespaceName(state.lab, p));
  await deleteNamespaces(namespaces);
  const dirs = state.files.filter((f) => namespaces.some((ns) => f.endsWith(`/${ns}`)));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  state.namespaces = state.namespaces.filter((ns) => !namespaces.includes(ns));
  state.processes = state.processes.filter((p) => !pods.includes(p.pod));
  state.files = state.files.filter((f) => !dirs.includes(f));
}
