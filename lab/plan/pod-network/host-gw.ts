import { ipv6View } from '../../topology/family.js';
import { HOST_IFNAME } from '../../topology/names.js';
import type { Node, Topology } from '../../topology/schema.js';
import { emptyPlan, leadsIntoPodRange, peersOf } from './common.js';
import type { PodNetwork } from './types.js';

/**
 * host-gw (flannel's host-gw backend): every node routes each peer's pod CIDR straight to that
 * peer's address on the shared L2 network, so the router never carries pod traffic between
 * nodes. Needs every node on one network: a next hop must be on-link. A dual-stack cluster gets
 * the same routes for IPv6 (flannel's GetV6Route: the peer's IPv6 subnet via its public IPv6
 * address), run once the node has its IPv6 address.
 */
export const hostGw: PodNetwork = {
  mode: 'host-gw',
  check(t, at) {
    const first = t.nodes[0];
    t.nodes.forEach((n, i) => {
      if (first && n.network !== first.network) {
        at(['nodes', i, 'network'], `podNetwork mode host-gw needs every node on one L2 network: "${n.name}" is on "${n.network}", "${first.name}" on "${first.network}" (routes via a peer's address must be on-link; use podNetwork mode vxlan or routed)`);
      }
    });
  },
  keepsRouterRoute: (t, route) => !leadsIntoPodRange(t, route),
  plan(t) {
    const plan = emptyPlan(t, 'host-gw');
    for (const n of t.nodes) plan.nodes[n.name]!.batch.push(...routesToPeers(t, n));
    const v6 = ipv6View(t);
    for (const n of v6?.nodes ?? []) plan.nodes[n.name]!.batch6.push(...routesToPeers(v6!, n));
    return plan;
  },
  crossNodeHop: (_t, from, to) => ({ summary: `${from.name} routes ${to.podCIDR} via ${to.address} dev ${HOST_IFNAME}: straight to ${to.name}'s MAC, the router only switches the frame`, viaRouter: false }),
};

/** One route per peer: its pod CIDR via its address on the shared network (in either family's view). */
const routesToPeers = (t: Topology, n: Node): string[] => peersOf(t, n).map((p) => `route add ${p.podCIDR} via ${p.address} dev ${HOST_IFNAME}`);
