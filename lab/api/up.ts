import { untilLinkLocalSettled } from '../kernel/ipv6-ready.js';
import { isDualStack } from '../topology/family.js';
import { ExitCode, LabError } from '../errors.js';
import { foreignNamespaceFiles } from '../kernel/apply.js';
import { CLAIMED, namespaceMarkers } from '../kernel/netns.js';
import { preflight } from '../kernel/preflight.js';
import { planLab, type Plan } from '../plan/plan.js';
import { LabStore, readState, type LabState } from '../state/store.js';
import { clashError, namespaceClashes, withNamespaceClaims } from '../state/claims.js';
import { withLabLock } from '../state/lock.js';
import { prebuiltTopology } from '../topology/prebuilt.js';
import { labMarker } from '../topology/names.js';
import { once, onInterrupt, throwIfInterrupted } from '../util/interrupt.js';
import { down } from './down.js';
import { syncHealthChecks, type LoadBalancerFollow } from './health.js';
import { settledAnnouncements, type AnnouncementSync } from './announcements.js';
import { loadBalancerOf } from '../plan/load-balancer/index.js';
import { provision } from './provision.js';
import { stager } from './stages.js';
import { rememberTopology, topologyKey } from './topology-cache.js';

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
  /** Health-checked load balancer routes, once the load balancer's first checks set them. */
  loadBalancers: LoadBalancerFollow[];
  /** MetalLB's announcements (loadBalancer.mode bgp) and the router's routes once they settled. */
  announced?: AnnouncementSync;
}

/**
 * Build a lab: validate, plan, then apply to the kernel stage by stage.
 * If any stage fails, everything created so far is removed before the error is raised.
 */
export async function up(topologyRef: string, opts: UpOptions = {}): Promise<UpResult> {
  const overrides = opts.overrides ?? {};
  // A built-in scenario was validated at build time; any other file is read and validated now.
  const loaded = prebuiltTopology(topologyRef, overrides) ?? (await import('../topology/load.js')).loadTopology(topologyRef, overrides);
  const { topology, path } = loaded;
  preflight();
  const plan = planLab(topology);
  if (plan.podNetwork.daemons.some((d) => d.name === 'bird')) preflight(['bird', 'birdc']); // bgp mode's BIRDs: named only when the mode needs them
  const lab = topology.lab;

  return withLabLock(lab, 'up', async () => {
    // Record intent first: a crash after this point leaves a state file `down` can follow. The
    // check and the record hold the claim lock: no other lab takes one of these names between.
    const store = await withNamespaceClaims(async () => {
      await refuseClashes(plan);
      return LabStore.create({
        lab,
        topologyPath: path,
        overrides,
        createdAt: new Date().toISOString(),
        phase: 'creating',
        namespaces: plan.namespaces.map((n) => n.ns),
        // Claimed while none of them existed (refuseClashes, under the claim lock): until their
        // inodes are recorded, a rollback may delete the unmarked ones a cut-short `ip -batch` made.
        namespaceIds: Object.fromEntries(plan.namespaces.map((n) => [n.ns, CLAIMED])),
        processes: [],
        // Recorded before they exist, like the namespaces: `down` removes them even after a crash.
        files: plan.files.map((f) => f.dir),
      });
    });

    const timings: Record<string, number> = {};
    const stage = stager(timings, (name, ms) => {
      opts.onStage?.(name, ms);
      // Fault injection for the crash-recovery tests: die hard, as a killed `up` would.
      if (process.env.LAB_CRASH_AFTER === name) process.kill(process.pid, 'SIGKILL');
    });
    // A failed stage and a stop signal (Ctrl-C) both undo everything, once.
    const rollback = once(() => down(lab));
    const release = onInterrupt(`roll back lab ${lab}`, rollback);
    let loadBalancers: LoadBalancerFollow[] = [];
    let announced: AnnouncementSync | undefined;
    try {
      await provision(plan, store, stage);
      // kube-proxy's own health servers (every node), its health check servers and the load balancer following them, once the links carry packets.
      await stage('health checks', async () => void (loadBalancers = await syncHealthChecks(topology)));
      // MetalLB's speakers announced from their start: wait for the router's multipath routes to hold every one.
      if (loadBalancerOf(topology).announcements(topology).length > 0) await stage('announcements', async () => void (announced = await settledAnnouncements(topology)));
      // IPv6 is up once no link-local address is tentative (duplicate address detection), or the first IPv6 requests stall.
      if (isDualStack(topology)) await stage('ipv6 addresses', () => untilLinkLocalSettled(plan.namespaces.map((n) => n.ns)));
      throwIfInterrupted();
    } catch (err) {
      await rollback().catch(() => undefined);
      throw err;
    } finally {
      release();
    }
    store.markUp(topologyKey(path, overrides));
    rememberTopology(lab, loaded, overrides);
    return { lab, plan, state: store.state, timings, loadBalancers, ...(announced ? { announced } : {}) };
  });
}

/**
 * Refuse to build over anything that exists: this lab's state, a namespace of the same name
 * (this lab's, left by a crash, or someone else's, which `down` would never remove), a name
 * another lab's state holds, or files in the /etc/netns folders the lab would own.
 */
async function refuseClashes(plan: Plan): Promise<void> {
  const lab = plan.lab;
  const clashes = await namespaceClashes(lab, plan.namespaces.map((n) => n.ns));
  const markers = await namespaceMarkers(clashes.filter((c) => c.lab === undefined).map((c) => c.ns));
  const clash = clashes.filter((c) => c.lab === undefined && markers.get(c.ns) === labMarker(lab)).map((c) => c.ns);
  const foreignNs = clashes.filter((c) => !clash.includes(c.ns));
  if (foreignNs.length > 0) throw clashError(lab, foreignNs);
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
}
