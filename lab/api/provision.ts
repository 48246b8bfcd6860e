import { rmSync } from 'node:fs';
import { applyRules, configureNamespaces, createNamespaces, waitForLinks, writeNamespaceFiles } from '../kernel/apply.js';
import { deleteNamespaces } from '../kernel/netns.js';
import { log } from '../log.js';
import type { Plan } from '../plan/plan.js';
import type { LabStore } from '../state/store.js';
import { namespaceName } from '../topology/names.js';
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
  store.addResources(
    plan.namespaces.map((n) => n.ns),
    plan.files.map((f) => f.dir),
  );
  if (plan.createBatch.length > 0) await stage('namespaces', () => createNamespaces(plan));
  // The workload process (`up` started it already; scale and revive start one if none runs) is
  // placed in a namespace that now exists, and comes up while the links are configured.
  const host = plan.workloads.length > 0 ? ensureWorkloadHost(store, plan.workloadHome) : undefined;
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

/** Delete pods: their workloads, their namespaces (which take their veth pairs along) and files. */
export async function removePods(store: LabStore, pods: string[]): Promise<void> {
  await stopPodWorkloads(store, pods);
  const namespaces = pods.map((p) => namespaceName(store.lab, p));
  await deleteNamespaces(namespaces);
  const dirs = store.state.files.filter((f) => namespaces.some((ns) => f.endsWith(`/${ns}`)));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  store.forgetPods(pods, namespaces, dirs);
}
