import { cidr6Contains, parseCidr6, parseIPv6 } from '../../util/ipv6.js';
import type { CheckContext } from './context.js';

/**
 * One IPv6 router route (dual-stack, docs/dualstack.md): to an IPv6 prefix of the lab (a
 * network's subnet6, cluster.podCIDR6 or serviceCIDR6) through IPv6 next hops on the router's networks.
 */
export function checkRoute6(c: CheckContext, i: number, j: number): void {
  const { t } = c;
  const r = t.routers[i]!;
  const route = r.routes[j]!;
  const at = (f: string) => ['routers', i, 'routes', j, f];
  const prefixes = [...t.networks.map((n) => n.subnet6), t.cluster.podCIDR6, t.cluster.serviceCIDR6].filter((x): x is string => x !== undefined).map(parseCidr6);
  const target = route.to.includes('/') ? parseCidr6(route.to) : parseIPv6(route.to) !== undefined ? parseCidr6(`${route.to}/128`) : undefined;
  if (!target) c.at(at('to'), `${route.to} is not a valid IPv6 address or network in RFC 5952 form`);
  else if (!prefixes.some((p) => p && p.prefix <= target.prefix && cidr6Contains(p, target.network))) {
    c.at(at('to'), `${route.to} lies outside the lab's IPv6 networks, pod and service ranges: no lab route may lead out of the lab`);
  }
  const hops = Array.isArray(route.via) ? route.via : [route.via];
  for (const hop of hops) {
    const h = parseIPv6(hop);
    const reachable = h !== undefined && r.interfaces.some((iface) => {
      const s = t.networks.find((n) => n.name === iface.network)?.subnet6;
      const sc = s === undefined ? undefined : parseCidr6(s);
      return iface.address6 !== undefined && sc !== undefined && cidr6Contains(sc, h);
    });
    if (!reachable) c.at(at('via'), `next hop ${hop} is not an IPv6 address on any IPv6 network of router "${r.name}" (an IPv6 route takes an IPv6 next hop)`);
  }
}
