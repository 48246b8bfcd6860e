import type { Node, RouterRoute, Topology } from '../../topology/schema.js';
import { cidrsOverlap, parseCidr } from '../../util/ipv4.js';
import { cidrs6Overlap, isIPv6Text, parseCidr6 } from '../../util/ipv6.js';
import type { NamespaceAdditions, PodNetworkPlan } from './types.js';

/** Nothing added to a namespace. */
export const noAdditions = (): NamespaceAdditions => ({ batch: [], batch6: [], bridgeBatch: [], sysctls: {} });

/** A plan whose every node and router gets nothing yet: each mode fills in its part. */
export function emptyPlan(t: Topology, mode: PodNetworkPlan['mode']): PodNetworkPlan {
  return {
    mode,
    nodes: Object.fromEntries(t.nodes.map((n) => [n.name, noAdditions()])),
    routers: Object.fromEntries(t.routers.map((r) => [r.name, noAdditions()])),
    daemons: [],
    drawn: [],
  };
}

/** True when a router route leads into the cluster's pod range: the route a CNI that carries pod traffic itself makes needless. */
export function leadsIntoPodRange(t: Topology, route: RouterRoute): boolean {
  if (isIPv6Text(route.to)) {
    // A dual-stack cluster's IPv6 pod-CIDR routes (routed mode's, written in the file too).
    const pods6 = t.cluster.podCIDR6 === undefined ? undefined : parseCidr6(t.cluster.podCIDR6);
    const to6 = parseCidr6(route.to.includes('/') ? route.to : `${route.to}/128`);
    return pods6 !== undefined && to6 !== undefined && to6.prefix >= pods6.prefix && cidrs6Overlap(pods6, to6);
  }
  const pods = parseCidr(t.cluster.podCIDR);
  const to = route.to.includes('/') ? parseCidr(route.to) : parseCidr(`${route.to}/32`);
  return pods !== undefined && to !== undefined && to.prefix >= pods.prefix && cidrsOverlap(pods, to);
}

/** Every other node, in file order. */
export const peersOf = (t: Topology, node: Node): Node[] => t.nodes.filter((n) => n.name !== node.name);

/** The network address of a node's pod CIDR (10.244.1.0 for 10.244.1.0/24). */
export const podNetworkAddress = (node: Node): string => node.podCIDR.split('/')[0]!;

/** A MAC from a prefix byte pair and an IPv4 address (locally administered: the first byte's bit 1 set). */
export const macFrom = (prefix: [string, string], address: string): string =>
  [...prefix, ...address.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');

