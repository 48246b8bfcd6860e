import { rmSync } from 'node:fs';
import { applyRules, configureNamespaces, createNamespaces, waitForLinks, writeNamespaceFiles } from '../kernel/apply.js';
import { CommandError, ExitCode, LabError } from '../errors.js';
import { CLAIMED, createdBeforeFailure, deleteNamespaces, deletePodNamespaces, namespaceInodes, namespaceMarkers, ownedNamespaces } from '../kernel/netns.js';
import { log } from '../log.js';
import { netnsEtcDir } from '../plan/dns.js';
import type { Plan } from '../plan/plan.js';
import { clashError, namespaceClashes, type NamespaceClash, withNamespaceClaims } from '../state/claims.js';
import type { LabStore } from '../state/store.js';
import { labMarker, namespaceName } from '../topology/names.js';
import type { Topology } from '../topology/schema.js';
import type { Stage } from './stages.js';
import { startPodNetworkDaemons } from './pod-network-daemons.js';
import { ensureWorkloadHost, startPodWorkloads, stopPodWorkloads } from './workloads.js';

/**
 * Build what a plan describes, stage by stage: the one provisioning sequence behind `up` (the
 * whole lab), `scale` (new pods: a plan cut to them by planPods) and `revive` (a pod's workload
 * only). A stage with nothing to do in the plan is skipped. What it creates is recorded in the
 * state first, so a crash at any point leaves nothing `down` misses.
 */
export async function provision(plan: Plan, store: LabStore, stage: Stage): Promise<void> {
  await claimResources(plan, store);
  if (plan.createBatch.length > 0) await stage('namespaces', () => createRecorded(plan, store));
  // The workload process (`up` started it already; scale and revive start one if none runs) is
  // placed in a namespace that now exists, and comes up while the links are configured.
  // `up` (the plan with kube-proxy's rules) always places it: it serves kube-proxy's /healthz on every node.
  const host = plan.workloads.length > 0 || plan.kubeProxy.length > 0 ? ensureWorkloadHost(store, plan.workloadHome) : undefined;
  host?.catch(() => undefined); // its failure is raised where it is awaited
  // A veth drops packets until the kernel has processed its carrier (see waitForLinks): checked
  // while the workload process comes up, once the links and rules are in place.
  let linksReady: Promise<void> | undefined;
  try {
    // Links and kube-proxy's rules at once: they touch different things, and the rules name
    // interfaces without needing them to exist. Both finish before either's failure is raised.
    const links = plan.namespaces.length > 0 ? stage('links', () => configureNamespaces(plan)) : undefined;
    const rules = plan.kubeProxy.length > 0 ? stage('kube-proxy rules', () => applyRules(plan)) : undefined;
    const failed = (await Promise.allSettled([links, rules])).find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (plan.files.length > 0) await stage('pod resolv.conf', async () => writeNamespaceFiles(plan));
    if (plan.namespaces.length > 0) {
      linksReady = stage('links ready', async () => {
        const stillDown = await waitForLinks(plan);
        if (stillDown.length > 0) log.warn({ links: stillDown }, 'links still not up after 3 s; the first packets through them may be lost');
      });
      linksReady.catch(() => undefined); // raised where it is awaited
    }
    if (host) await stage('workloads', async () => startPodWorkloads(store, plan.workloads, await host));
    await linksReady;
    // The pod network's daemons (bgp: BIRD), once the links they speak over carry packets.
    if (plan.podNetwork.daemons.length > 0) await stage('pod network daemons', () => startPodNetworkDaemons(plan, store));
  } catch (err) {
    await Promise.all([host?.catch(() => undefined), linksReady?.catch(() => undefined)]); // recorded, and no command left running, before the caller cleans up
    throw err;
  }
}

/**
 * Record the namespaces and files the plan creates. Namespaces this lab does not hold yet (a
 * scale's new pods) are claimed first: refused, before anything is created, when one exists or
 * another lab holds it (see state/claims.ts).
 */
async function claimResources(plan: Plan, store: LabStore): Promise<void> {
  const namespaces = plan.namespaces.map((n) => n.ns);
  const files = plan.files.map((f) => f.dir);
  const fresh = namespaces.filter((ns) => !store.state.namespaces.includes(ns));
  if (fresh.length === 0) return store.addResources(namespaces, files);
  await withNamespaceClaims(async () => {
    const clashes = await withoutOwnLeftovers(store.lab, await namespaceClashes(store.lab, fresh));
    if (clashes.length > 0) throw clashError(store.lab, clashes);
    store.addResources(namespaces, files);
    // Until `ip netns add` has run and its inodes are recorded, an interrupted up's rollback knows these names as its own.
    store.recordNamespaceIds(new Map(fresh.map((ns) => [ns, CLAIMED])));
  });
}

/**
 * A clash with a namespace that carries this lab's own marker but that its state no longer lists
 * (left by a removal that failed or was cut short) is this lab's leftover: deleted, not refused.
 */
async function withoutOwnLeftovers(lab: string, clashes: NamespaceClash[]): Promise<NamespaceClash[]> {
  const unowned = clashes.filter((c) => c.lab === undefined).map((c) => c.ns);
  const markers = await namespaceMarkers(unowned);
  const own = unowned.filter((ns) => markers.get(ns) === labMarker(lab));
  if (own.length === 0) return clashes;
  log.warn({ lab, namespaces: own }, 'removing namespaces this lab marked but no longer lists');
  await deleteNamespaces(own);
  const left = new Set(namespaceInodes(own).keys());
  return clashes.filter((c) => !own.includes(c.ns) || left.has(c.ns));
}

/** Create the plan's namespaces and record who they are at once, also those made before a failure. */
async function createRecorded(plan: Plan, store: LabStore): Promise<void> {
  try {
    await createNamespaces(plan);
  } catch (err) {
    const made = err instanceof CommandError ? createdBeforeFailure(plan.createBatch, err.stderr) : [];
    store.recordNamespaceIds(namespaceInodes(made));
    // When ip says which line failed, a name claimed but not made (another `ip netns add` got
    // there first) is not the lab's to delete. Otherwise (ip killed) any of them may exist: kept.
    if (err instanceof CommandError && /Command failed -:\d+/.test(err.stderr)) store.dropNamespaceIds(plan.namespaces.map((n) => n.ns).filter((ns) => !made.includes(ns) && store.state.namespaceIds?.[ns] === CLAIMED));
    throw err;
  }
  store.recordNamespaceIds(namespaceInodes(plan.namespaces.map((n) => n.ns)));
}

/**
 * One removal at a time: a stop signal's handler removes leftovers while the interrupted verb
 * may still be removing the same pods, and two `ip netns del` of one name, or one beside an
 * `ip netns exec` into it, can leave the name behind (measured: 1 round in 6 of an interrupted
 * scale down left both pods' namespaces, marked as the lab's, that its state had forgotten).
 */
let removals: Promise<unknown> = Promise.resolve();

/** Delete pods: their workloads, their namespaces (which take their veth pairs along) and files. */
export function removePods(store: LabStore, pods: string[]): Promise<void> {
  const next = removals.then(() => removePodsNow(store, pods));
  removals = next.catch(() => undefined);
  return next;
}

async function removePodsNow(store: LabStore, pods: string[]): Promise<void> {
  await stopPodWorkloads(store, pods);
  const recorded = pods.map((p) => namespaceName(store.lab, p)).filter((ns) => store.state.namespaces.includes(ns));
  // Only what the lab made: a pod namespace someone else created under the same name stays.
  const namespaces = await ownedNamespaces(store.lab, recorded, store.state.namespaceIds);
  await deletePodNamespaces(namespaces);
  // A name still there stays in the state, so the next verb or `lab down` removes it.
  const left = await leftAfterDelete(namespaces);
  const gone = recorded.filter((ns) => !left.includes(ns));
  const dirs = store.state.files.filter((f) => gone.some((ns) => f === netnsEtcDir(ns)));
  for (const ns of namespaces) if (dirs.includes(netnsEtcDir(ns))) rmSync(netnsEtcDir(ns), { recursive: true, force: true });
  store.forgetPods(pods, gone, dirs);
  if (left.length > 0) throw new LabError(`could not delete namespace${left.length === 1 ? '' : 's'} ${left.join(', ')} (still listed; "lab down" tries again)`, ExitCode.commandFailed);
}

/** The namespaces of `names` still present after a delete; tried once more, as ip's -force batch reports no failure. */
async function leftAfterDelete(names: string[]): Promise<string[]> {
  const left = [...namespaceInodes(names).keys()];
  if (left.length === 0) return [];
  await deleteNamespaces(left);
  return [...namespaceInodes(left).keys()];
}

/**
 * Pods whose namespaces the state holds but the lab, as recorded, no longer has: left by a
 * scale, kill or revive stopped halfway (a signal between recording and finishing). Removed, so
 * the next verb finds the lab as its state describes it.
 */
export async function removeLeftoverPods(store: LabStore, t: Topology): Promise<string[]> {
  const hosts = new Set([...t.nodes, ...t.clients, ...t.routers, ...t.pods].map((h) => namespaceName(store.lab, h.name)));
  const leftovers = store.state.namespaces.filter((ns) => !hosts.has(ns)).map((ns) => ns.slice(store.lab.length + 1));
  if (leftovers.length > 0) await removePods(store, leftovers);
  return leftovers;
}
