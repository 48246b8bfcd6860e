import { controlWorkloads } from '../kernel/workloads.js';
import { readNextHops } from '../kernel/readers.js';
import { expectedNextHops, healthCheckServers, loadBalancerChecks } from '../plan/kube-proxy/health.js';
import { proxyHealthServers } from '../plan/kube-proxy/proxy-health.js';
import { labDir } from '../state/store.js';
import type { Topology } from '../topology/schema.js';

/** Where a health-checked load balancer route stood once the lab stopped waiting for it. */
export interface LoadBalancerFollow {
  router: string;
  to: string;
  /** The port its probes ask /healthz of: a healthCheckNodePort, or kube-proxy's own 10256. */
  port: number;
  /** The route's next hops, read from the router's namespace. */
  via: string[];
  /** What the health checks should settle on: the nodes with a ready local endpoint. */
  want: string[];
  /** They matched before the deadline. */
  settled: boolean;
  /** From sending the new counts to the route matching (or to the deadline). */
  ms: number;
}

/** How long the load balancer gets to follow (several of its check intervals, and a loaded machine). */
const FOLLOW_DEADLINE_MS = 10_000;

/**
 * kube-proxy's health side of a sync: tell every node's own health server (/healthz, /livez on
 * 10256) that the node synced, send every health check server its new local endpoint count (the
 * workload process opens any server not yet listening and starts the load balancer's checks),
 * then wait, reading the router's route, until the load balancer's own probes have moved its next
 * hops to the nodes that pass. The answer comes once every server listens.
 */
export async function syncHealthChecks(t: Topology, opts: { nodeOnly?: boolean } = {}): Promise<LoadBalancerFollow[]> {
  const servers = healthCheckServers(t);
  const loadBalancers = loadBalancerChecks(t);
  const started = performance.now();
  // nodeOnly: a Node changed (lab node), no sync ran: kube-proxy's servers learn the node's eligibility only.
  const proxies = proxyHealthServers(t).map((p) => (opts.nodeOnly ? { ...p, nodeOnly: true } : p));
  await controlWorkloads(labDir(t.lab), { op: 'health', servers, loadBalancers, proxies });
  return Promise.all(loadBalancers.map(async (c) => ({ router: c.router, to: c.to, port: c.port, ...(await waitForNextHops(c.ns, c.to, expectedNextHops(t, c), started)) })));
}

const sameHops = (a: string[], b: string[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

/** Poll the route (each read is one `ip -j route` in the router's namespace) until it has `want`, or the deadline passes. */
async function waitForNextHops(ns: string, to: string, want: string[], started: number) {
  for (;;) {
    const via = await readNextHops(ns, to);
    const ms = Math.round(performance.now() - started);
    if (sameHops(via, want)) return { via, want, settled: true, ms };
    if (ms > FOLLOW_DEADLINE_MS) return { via, want, settled: false, ms };
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
