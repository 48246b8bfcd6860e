import { cidrContains, parseCidr, parseIPv4 } from '../../util/ipv4.js';
import { insideLab, labPrefixes } from '../relations.js';
import type { CheckContext } from './context.js';
import { checkRoute6 } from './route6.js';

/**
 * Routes: every router route leads to a prefix inside the lab through a next hop on one of the
 * router's networks, and each network is held by exactly one router.
 */
export function checkRoutes(c: CheckContext): void {
  const { t } = c;
  const prefixes = labPrefixes(t);
  t.routers.forEach((r, i) => {
    r.routes.forEach((route, j) => {
      // IPv6 routes are the IPv6 view's (checks/route6.ts).
      if (route.to.includes(':')) return checkRoute6(c, i, j);
      const to = route.to.includes('/') ? parseCidr(route.to) : parseIPv4(route.to);
      if (to === undefined) c.at(['routers', i, 'routes', j, 'to'], `${route.to} is not a valid address or network`);
      else if (!insideLab(prefixes, route.to)) c.at(['routers', i, 'routes', j, 'to'], `${route.to} lies outside the lab's networks, pod and service ranges: no lab route may lead out of the lab`);
      const hops = Array.isArray(route.via) ? route.via : [route.via];
      hops.forEach((hop) => {
        const h = parseIPv4(hop);
        const reachable = h !== undefined && r.interfaces.some((iface) => {
          const s = c.networks.get(iface.network);
          return s !== undefined && cidrContains(s, h);
        });
        if (!reachable) c.at(['routers', i, 'routes', j, 'via'], `next hop ${hop} is not on any network of router "${r.name}"`);
      });
    });
  });

  // Each L2 network lives as a bridge inside the router that serves it.
  t.networks.forEach((n, i) => {
    const servers = t.routers.filter((r) => r.interfaces.some((iface) => iface.network === n.name));
    if (servers.length === 0) c.at(['networks', i, 'name'], `no router has an interface on network "${n.name}"; a router holds each network's segment`);
    if (servers.length > 1) c.at(['networks', i, 'name'], `network "${n.name}" is served by several routers (${servers.map((r) => r.name).join(', ')}); the lab supports one`);
  });
}
