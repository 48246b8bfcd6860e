import { cidrContains, firstHost, parseCidr, parseIPv4 } from '../util/ipv4.js';
import type { Node, Pod, Service, Topology } from './schema.js';

/**
 * Facts about a topology that both its validation and its planning rely on, said once:
 * which pods a Service selects, and what lies inside the lab's own address space.
 */

/** A Service selects a pod when its (non-empty) selector's labels all match. */
export function selects(service: Service, pod: Pod): boolean {
  const entries = Object.entries(service.selector ?? {});
  return entries.length > 0 && entries.every(([k, v]) => pod.labels[k] === v);
}

/** A node's bridge address, its pods' gateway: as written, else the first address of its pod CIDR. */
export function bridgeAddressOf(node: Pick<Node, 'podCIDR' | 'bridgeAddress'>): string {
  if (node.bridgeAddress !== undefined) return node.bridgeAddress;
  const c = parseCidr(node.podCIDR);
  return c ? firstHost(c) : '';
}

/** The lab's own ranges: its networks, the pod range and the service range. */
const ownRanges = (t: Pick<Topology, 'networks' | 'cluster'>): string[] => [...t.networks.map((n) => n.subnet), t.cluster.podCIDR, t.cluster.serviceCIDR];

/**
 * The lab's own prefixes: its own ranges, and each IPv4 load balancer or external IP outside them
 * (as upstream's tests use 1.2.3.4 or 5.6.7.8), as a /32 every host routes toward its router.
 */
export const labPrefixes = (t: Pick<Topology, 'networks' | 'cluster'> & Partial<Pick<Topology, 'services'>>): string[] => [
  ...ownRanges(t),
  ...outsideServiceIPs(t).map((ip) => `${ip}/32`),
];

/** Load balancer and external IPs (IPv4) that lie outside the lab's own ranges, each once, in file order. */
export function outsideServiceIPs(t: Pick<Topology, 'networks' | 'cluster'> & Partial<Pick<Topology, 'services'>>): string[] {
  const own = ownRanges(t);
  const ips = (t.services ?? []).flatMap((s) => [...(s.type === 'LoadBalancer' ? s.loadBalancerIPs : []), ...s.externalIPs]);
  return [...new Set(ips.filter((ip) => parseIPv4(ip) !== undefined && !insideLab(own, ip) && reservedRange(ip) === undefined))];
}

/**
 * Ranges no address of a Service may take (RFC 6890 special-purpose): "this network", loopback,
 * link-local, multicast, reserved and broadcast. The kernel would not route them as a unicast host's.
 */
const RESERVED = ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '240.0.0.0/4'];

/** The reserved range an address lies in, if any. */
export function reservedRange(ip: string): string | undefined {
  return RESERVED.find((r) => insideLab([r], ip));
}

/**
 * The routes the lab adds for outside service IPs no router route of the file covers: on the
 * router of the first node's network, one route over every node on its networks (ECMP), as a
 * cloud load balancer spreads a VIP over the nodes. `keep` leaves out what a load balancer mode
 * announces instead (MetalLB's BGP mode announces its LoadBalancer IPs).
 */
export function serviceIPRoutes(t: Topology, announced: (ip: string) => boolean = () => false): { router: string; to: string; via: string[] }[] {
  const covered = (ip: string) => t.routers.some((r) => r.routes.some((route) => !route.to.includes(':') && insideLab([route.to.includes('/') ? route.to : `${route.to}/32`], ip)));
  const router = t.routers.find((r) => r.interfaces.some((i) => i.network === t.nodes[0]?.network));
  if (!router) return [];
  const nets = new Set(router.interfaces.map((i) => i.network));
  const via = t.nodes.filter((n) => nets.has(n.network)).map((n) => n.address);
  return outsideServiceIPs(t)
    .filter((ip) => !covered(ip) && !announced(ip))
    .map((ip) => ({ router: router.name, to: `${ip}/32`, via }));
}

/** True when an address or prefix lies inside the lab's own address space (no route may lead out of it). */
export function insideLab(prefixes: string[], target: string): boolean {
  const [addr, len] = target.split('/');
  const a = parseIPv4(addr!);
  if (a === undefined) return false;
  const prefix = len === undefined ? 32 : Number(len);
  return prefixes.some((p) => {
    const c = parseCidr(p);
    return c !== undefined && c.prefix <= prefix && cidrContains(c, a);
  });
}
