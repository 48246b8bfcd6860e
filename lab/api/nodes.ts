import { preflight, requireRoot } from '../kernel/preflight.js';
import { nodeVerdict, planNodeChange, recordNodeChange, type NodeRequest } from '../plan/node-changes.js';
import { withLabLock } from '../state/lock.js';
import type { Taint } from '../topology/schema.js';
import { syncHealthChecks, type LoadBalancerFollow } from './health.js';
import { runningLab } from './running.js';

/**
 * A Node change on a running lab (`lab node`): the Node marked as being deleted (a
 * deletionTimestamp) or not, tainted or untainted. kube-proxy's node informer hands the Node to
 * its health server (SyncNode, pkg/proxy/healthcheck/proxy_health.go): a node being deleted or
 * tainted ToBeDeletedByClusterAutoscaler is not eligible and /healthz answers 503 there (/livez
 * stays 200). No rule changes: kube-proxy does not resync for it. A static load balancer that
 * follows /healthz (loadBalancer.proxyHealthz) then drops the node from its routes, or takes it back.
 */
export interface NodeChangeResult {
  lab: string;
  node: string;
  /** The node's address (kube-proxy's /healthz listens on every address of the node). */
  address: string;
  deleting: boolean;
  taints: Taint[];
  /** SyncNode's verdict before and after. */
  was: { nodeEligible: boolean; healthz: 200 | 503 };
  nodeEligible: boolean;
  /** What the node's /healthz answers now (its syncs keep up in the lab). */
  healthz: 200 | 503;
  /** The load balancer routes that follow /healthz, once its probes have moved them. */
  loadBalancers: LoadBalancerFollow[];
  ms: number;
}

export function changeNode(lab: string, node: string, req: NodeRequest): Promise<NodeChangeResult> {
  requireRoot();
  return withLabLock(lab, 'node', async () => {
    const started = performance.now();
    const running = runningLab(lab);
    preflight();
    const { before, after, change } = planNodeChange(running.topology, node, req);
    const store = running.store();
    store.setNodeChanges(recordNodeChange(store.state.nodeChanges, node, change));
    const t = { ...running.topology, nodes: running.topology.nodes.map((n) => (n.name === node ? after : n)) };
    const loadBalancers = await syncHealthChecks(t, { nodeOnly: true });
    return {
      lab,
      node,
      address: after.address,
      deleting: !!after.deleting,
      taints: after.taints ?? [],
      was: nodeVerdict(before),
      ...nodeVerdict(after),
      loadBalancers,
      ms: Math.round(performance.now() - started),
    };
  });
}
