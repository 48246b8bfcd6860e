import type { Topology } from '../../topology/schema.js';
import { servicePorts } from '../endpoints.js';

/**
 * kube-proxy's service health check server, as data: for every Service with a health check node
 * port (LoadBalancer, externalTrafficPolicy Local), how many of its ready endpoints each node
 * has. kube-proxy updates its server with these counts after every sync; the lab writes them to
 * a file per node that the node's health check server reads. Pure.
 */
export type HealthState = Record<string, { namespace: string; name: string; localEndpoints: number }>;

export function healthCheckServices(t: Topology) {
  return t.services.filter((s) => s.type === 'LoadBalancer' && s.externalTrafficPolicy === 'Local' && s.healthCheckNodePort !== undefined);
}

export function healthStates(t: Topology): Record<string, HealthState> {
  const services = healthCheckServices(t);
  const ports = servicePorts(t);
  return Object.fromEntries(
    t.nodes.map((n) => [
      n.name,
      Object.fromEntries(
        services.map((s) => {
          const local = new Set(ports.filter((p) => p.service === s).flatMap((p) => p.endpoints.filter((e) => e.node === n.name).map((e) => e.pod)));
          return [String(s.healthCheckNodePort), { namespace: s.namespace, name: s.name, localEndpoints: local.size }];
        }),
      ),
    ]),
  );
}

/** The router routes a load balancer health-checks: ECMP routes to a load balancer IP of such a Service. */
export function healthCheckedRoutes(t: Topology): { router: string; to: string; port: number; via: string[] }[] {
  const byIP = new Map(healthCheckServices(t).flatMap((s) => s.loadBalancerIPs.map((ip) => [ip, s.healthCheckNodePort!] as const)));
  return t.routers.flatMap((r) =>
    r.routes.flatMap((route) => {
      const ip = route.to.replace(/\/32$/, '');
      const port = byIP.get(ip);
      return port !== undefined && Array.isArray(route.via) && route.via.length > 1 ? [{ router: r.name, to: route.to, port, via: route.via }] : [];
    }),
  );
}
