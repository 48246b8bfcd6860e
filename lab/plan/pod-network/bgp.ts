import { isDualStack } from '../../topology/family.js';
import type { Node, Topology } from '../../topology/schema.js';
import { bgpSessions, bgpSpeakers, nodeAs, ROUTER_AS } from '../bgp-speakers.js';
import { emptyPlan, leadsIntoPodRange } from './common.js';
import type { DrawnLink, PodNetwork } from './types.js';

export { bgpSessions, nodeAs, ROUTER_AS, type BgpSession } from '../bgp-speakers.js';

/**
 * bgp (pod routes learned by BGP with BIRD, as Calico does): a BIRD in every node announces the
 * node's pod CIDR; a BIRD in every router on a node network peers with each node there and
 * installs what it learns in the kernel (proto bird). Nodes keep sending other nodes' pod
 * traffic to their default route, the router, so they import nothing: the packet crosses the
 * router as in the seeds, only the route it follows is learned, not written in the file.
 * The speakers themselves are lab/plan/bgp-speakers.ts, shared with MetalLB's BGP mode.
 */
export const podCidrSpeakers = (t: Topology) => bgpSpeakers(t, { announces: (n) => [n.podCIDR], ...podCidr6Wants(t), mergesPaths: false });

/**
 * A dual-stack cluster's IPv6 pod CIDRs: each node's BIRD announces its podCIDR6 too, over the
 * same session (an ipv6 channel, MP-BGP), and the router installs them (proto bird).
 */
export const podCidr6Wants = (t: Topology): { announces6?: (n: Node) => string[] } => (isDualStack(t) ? { announces6: (n) => (n.podCIDR6 ? [n.podCIDR6] : []) } : {});

/**
 * The pod network's bgp mode. The router keeps none of the file's pod-CIDR routes: it learns
 * them. Every BIRD's configuration is written in the plan, so it is unit-tested and parsed.
 */
export const bgp: PodNetwork = {
  mode: 'bgp',
  // What BIRD could not announce (a pod CIDR outside cluster.podCIDR, overlapping another, or a
  // node without a router on its network to peer with) the topology's own checks refuse already.
  check() {},
  keepsRouterRoute: (t, route) => !leadsIntoPodRange(t, route),
  plan(t) {
    const sessions = bgpSessions(t);
    const daemons = podCidrSpeakers(t);
    const drawn: DrawnLink[] = sessions.map((s) => ({ a: s.router.name, b: s.node.name, kind: 'session', label: `BGP AS${ROUTER_AS} ↔ AS${nodeAs(t, s.node)}` }));
    return { ...emptyPlan(t, 'bgp'), daemons, drawn };
  },
  crossNodeHop: (t, from, to) => {
    const router = bgpSessions(t).find((s) => s.node.name === from.name)?.router.name ?? 'the router';
    return { summary: `${from.name} sends it to ${router}, whose route for ${to.podCIDR} via ${to.address} was learned by BGP from ${to.name}'s BIRD (proto bird)`, viaRouter: true };
  },
};
