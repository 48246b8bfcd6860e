import type { Service, Topology } from '../../topology/schema.js';
import { namespaceName } from '../../topology/names.js';
import { selects } from '../../topology/relations.js';
import { endpointConditions } from '../endpoints.js';
import { loadBalancerOf } from '../load-balancer/index.js';
import { PROXY_HEALTH_PORT, proxyHealthServers } from './proxy-health.js';

/**
 * kube-proxy's service health check server and the cloud load balancer that follows it, as
 * data. Pure: the workload process serves and probes what these functions describe.
 */

/** One node's health check server for one Service: what kube-proxy answers on healthCheckNodePort. */
export interface HealthCheckServer {
  node: string;
  /** The node's network namespace: the server listens there. */
  ns: string;
  /**
   * The address it listens on: kube-proxy listens on the --nodeport-addresses IPs, so on every
   * address (0.0.0.0) by default in iptables mode, and on the node IP in nftables mode, whose
   * default is "primary".
   */
  address: string;
  port: number;
  namespace: string;
  name: string;
  /** The Service's ready endpoints on this node (distinct pod IPs), as kube-proxy counts them after a sync. */
  localEndpoints: number;
}

/** How the load balancer checks its backends: a cloud's defaults, scaled down to a lab's pace. */
export interface HealthCheckTiming {
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures before a healthy node is taken out. */
  unhealthyThreshold: number;
  /** Consecutive successes before an unhealthy node is put back. */
  healthyThreshold: number;
}

/**
 * Cloud load balancers probe every few seconds (GCE's health check for such a Service: every
 * 8 s, 1 s timeout, 3 failures out, 1 success in) and need more than one failure to drop a
 * backend. The lab keeps the shape and shrinks the clock, so a walkthrough waits well under a second.
 */
export const LB_HEALTH_CHECK: HealthCheckTiming = { intervalMs: 200, timeoutMs: 150, unhealthyThreshold: 2, healthyThreshold: 1 };

/** What the load balancer believes of one node: healthy or not (undefined before its first probe), and the probes in a row that disagree. */
export interface NodeHealth {
  healthy: boolean | undefined;
  streak: number;
}

/**
 * One probe's effect on a node's state, as cloud load balancers count: the first probe decides,
 * after that a healthy node is taken out after `unhealthyThreshold` failures in a row and an
 * unhealthy one put back after `healthyThreshold` passes in a row.
 */
export function afterProbe(state: NodeHealth, passed: boolean, timing: Pick<HealthCheckTiming, 'unhealthyThreshold' | 'healthyThreshold'>): NodeHealth {
  if (state.healthy === undefined || state.healthy === passed) return { healthy: passed, streak: 0 };
  const streak = state.streak + 1;
  return streak >= (state.healthy ? timing.unhealthyThreshold : timing.healthyThreshold) ? { healthy: passed, streak: 0 } : { healthy: state.healthy, streak };
}

/** The next hops for the nodes' states: the healthy ones, or every node when none is (fail open). */
export function nextHopsOf(nodes: string[], healthy: (node: string) => boolean | undefined): string[] {
  const passing = nodes.filter((n) => healthy(n));
  return passing.length > 0 ? passing : nodes;
}

/** A router route to a load balancer IP that the load balancer health-checks: its next hops follow the checks. */
export interface LoadBalancerCheck extends HealthCheckTiming {
  router: string;
  /** The router's namespace: probes leave from there and the route is replaced there, nowhere else. */
  ns: string;
  /** The route's destination, with its prefix (10.240.0.100/32). */
  to: string;
  /**
   * What is probed on every next hop (GET /healthz): the Service's healthCheckNodePort
   * (externalTrafficPolicy Local), or kube-proxy's own port 10256 (Cluster, with loadBalancer.proxyHealthz).
   */
  port: number;
  /** Every next hop (node address) the route may use. */
  nodes: string[];
}

/** Services kube-proxy runs a health check server for: LoadBalancer, externalTrafficPolicy Local. */
export function healthCheckServices(t: Topology): (Service & { healthCheckNodePort: number })[] {
  return t.services.filter((s): s is Service & { healthCheckNodePort: number } => s.type === 'LoadBalancer' && s.externalTrafficPolicy === 'Local' && s.healthCheckNodePort !== undefined);
}

/** kube-proxy's LocalReadyEndpoints for one Service on one node: distinct IPs of ready endpoints there (a terminating pod is not ready). */
export function localReadyEndpoints(t: Topology, service: Service, node: string): number {
  return new Set(t.pods.filter((p) => p.node === node && endpointConditions(p).ready && selects(service, p)).map((p) => p.address)).size;
}

/** Every node's health check server, one per such Service, with its count after this sync. */
export function healthCheckServers(t: Topology): HealthCheckServer[] {
  return healthCheckServices(t).flatMap((s) =>
    t.nodes.map((n) => ({
      node: n.name,
      ns: namespaceName(t.lab, n.name),
      address: t.kubeProxy.mode === 'nftables' ? n.address : '0.0.0.0',
      port: s.healthCheckNodePort,
      namespace: s.namespace,
      name: s.name,
      localEndpoints: localReadyEndpoints(t, s, n.name),
    })),
  );
}

/**
 * LoadBalancer Services whose load balancer follows kube-proxy's own /healthz: externalTrafficPolicy
 * Cluster ones, when the topology asks for it (loadBalancer.proxyHealthz), as cloud providers do
 * (KEP-3458: a node whose kube-proxy is unhealthy or whose Node is being deleted gets no new connections).
 */
export function proxyHealthzServices(t: Topology): Service[] {
  if (!t.loadBalancer.proxyHealthz) return [];
  return t.services.filter((s) => s.type === 'LoadBalancer' && s.externalTrafficPolicy !== 'Local');
}

/** The routes to a health-checked Service's load balancer IP over more than one node: what the load balancer checks. */
export function loadBalancerChecks(t: Topology): LoadBalancerCheck[] {
  const portByIP = new Map([
    ...proxyHealthzServices(t).flatMap((s) => s.loadBalancerIPs.map((ip) => [ip, PROXY_HEALTH_PORT] as const)),
    ...healthCheckServices(t).flatMap((s) => s.loadBalancerIPs.map((ip) => [ip, s.healthCheckNodePort] as const)),
  ]);
  return t.routers.flatMap((r) =>
    r.routes.flatMap((route) => {
      // A mode that announces the IP (MetalLB) leaves no static route for health checks to steer.
      if (!loadBalancerOf(t).keepsRouterRoute(t, route)) return [];
      const port = portByIP.get(route.to.replace(/\/32$/, ''));
      if (port === undefined || !Array.isArray(route.via) || route.via.length < 2) return [];
      const to = route.to.includes('/') ? route.to : `${route.to}/32`;
      return [{ router: r.name, ns: namespaceName(t.lab, r.name), to, port, nodes: [...route.via], ...LB_HEALTH_CHECK }];
    }),
  );
}

/**
 * The next hops a check settles on once its probes have seen this topology: the nodes whose
 * server answers 200 (a ready local endpoint), or every node when none does (cloud load
 * balancers fail open rather than send nowhere).
 */
export function expectedNextHops(t: Topology, check: LoadBalancerCheck): string[] {
  if (check.port === PROXY_HEALTH_PORT) {
    const eligible = new Set(proxyHealthServers(t).filter((s) => s.nodeEligible).map((s) => s.node));
    return nextHopsOf(check.nodes, (ip) => eligible.has(t.nodes.find((n) => n.address === ip)?.name ?? ''));
  }
  const servers = healthCheckServers(t).filter((s) => s.port === check.port);
  return nextHopsOf(check.nodes, (ip) => {
    const node = t.nodes.find((n) => n.address === ip);
    return servers.some((s) => s.node === node?.name && s.localEndpoints > 0);
  });
}

/** The body kube-proxy's health check server writes (pkg/proxy/healthcheck/service_health.go): tab-indented JSON, no final newline. */
export function healthCheckBody(namespace: string, name: string, localEndpoints: number, serviceProxyHealthy = true): string {
  return [
    '{',
    '\t"service": {',
    `\t\t"namespace": ${JSON.stringify(namespace)},`,
    `\t\t"name": ${JSON.stringify(name)}`,
    '\t},',
    `\t"localEndpoints": ${localEndpoints},`,
    `\t"serviceProxyHealthy": ${serviceProxyHealthy}`,
    '}',
  ].join('\n');
}
