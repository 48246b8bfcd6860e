import type { Node, Topology } from '../../topology/schema.js';
import { namespaceName } from '../../topology/names.js';
import { bgpSessions, bgpSpeakers, nodeAs, ROUTER_AS } from '../bgp-speakers.js';
import { podCidr6Wants } from '../pod-network/bgp.js';
import { noAdditions } from '../pod-network/common.js';
import type { PodNetworkPlan } from '../pod-network/types.js';
import { bgpAnnouncements, leadsToLoadBalancerIP, speakerNodes } from './announcements.js';
import type { LoadBalancer, RouteExpectation } from './types.js';

/**
 * bgp (MetalLB's BGP mode): every node's BIRD announces each LoadBalancer IP as a /32 while
 * MetalLB would (announcements.ts); the router's BIRD installs one multipath route per IP, a next
 * hop per announcing node, and hashes on ports. No static route to the IP anywhere. When the
 * pod network is in bgp mode too, each node's one BIRD carries its pod CIDR and the IPs.
 */

/** The /32s a node originates now. */
export const announcedBy = (t: Topology, node: Node): string[] =>
  bgpAnnouncements(t)
    .filter((a) => a.nodes.includes(node.name))
    .map((a) => `${a.ip}/32`);

export const bgpLoadBalancer: LoadBalancer = {
  mode: 'bgp',
  announcementLabel: (ip) => `BGP ${ip}/32`,
  check(t, at) {
    const speakers = new Set(speakerNodes(t));
    t.nodes.forEach((n, i) => {
      if (!speakers.has(n.name)) at(['nodes', i, 'network'], `loadBalancer.mode bgp: node ${n.name} has no router on network ${n.network} to peer with`);
    });
  },
  keepsRouterRoute: (t, route) => !leadsToLoadBalancerIP(t, route.to),
  extend(t, podNetwork: PodNetworkPlan): PodNetworkPlan {
    // The pod network's own BIRDs, if it runs any, announce its pod CIDRs: the same BIRDs carry both.
    const carriesPodCidrs = podNetwork.daemons.length > 0;
    const daemons = bgpSpeakers(t, { announces: (n) => [...(carriesPodCidrs ? [n.podCIDR] : []), ...announcedBy(t, n)], ...(carriesPodCidrs ? podCidr6Wants(t) : {}), mergesPaths: true });
    const routers = { ...podNetwork.routers };
    for (const r of t.routers) {
      const before = routers[r.name] ?? noAdditions();
      // Spread connections over the next hops by their ports too, inside the router only.
      routers[r.name] = { ...before, sysctls: { ...before.sysctls, 'net.ipv4.fib_multipath_hash_policy': '1' } };
    }
    const drawn = carriesPodCidrs ? podNetwork.drawn : [...podNetwork.drawn, ...bgpSessions(t).map((s) => ({ a: s.router.name, b: s.node.name, kind: 'session' as const, label: `BGP AS${ROUTER_AS} ↔ AS${nodeAs(t, s.node)} (MetalLB)` }))];
    return { ...podNetwork, routers, daemons, drawn };
  },
  announcements: bgpAnnouncements,
  expectedNeighbours: () => [],
  expectedRoutes(t) {
    const sessions = bgpSessions(t);
    return bgpAnnouncements(t).flatMap((a) =>
      t.routers
        .filter((r) => sessions.some((s) => s.router.name === r.name))
        .map((r): RouteExpectation => {
          const via = sessions.filter((s) => s.router.name === r.name && a.nodes.includes(s.node.name)).map((s) => s.node.address);
          return { router: r.name, ns: namespaceName(t.lab, r.name), to: `${a.ip}/32`, via };
        }),
    );
  },
};
