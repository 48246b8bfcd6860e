import type { LoadBalancer } from './types.js';

/**
 * static (the default): the LoadBalancer IP reaches the nodes by the router routes the topology
 * file writes, and by the health-check-following routes where a Service has healthCheckNodePort
 * (a cloud load balancer, lab/plan/kube-proxy/health.ts). Nothing is announced; the plan is
 * what it was before this mode existed.
 */
export const staticLoadBalancer: LoadBalancer = {
  mode: 'static',
  announcementLabel: (ip) => ip,
  check() {},
  keepsRouterRoute: () => true,
  extend: (_t, podNetwork) => podNetwork,
  announcements: () => [],
  expectedRoutes: () => [],
  expectedNeighbours: () => [],
};
