import { HOST_IFNAME } from '../../topology/names.js';
import { emptyPlan, leadsIntoPodRange, peersOf } from './common.js';
import type { PodNetwork } from './types.js';

/**
 * host-gw (flannel's host-gw backend): every node routes each peer's pod CIDR straight to that
 * peer's address on the shared L2 network, so the router never carries pod traffic between
 * nodes. Needs every node on one network: a next hop must be on-link.
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
    for (const n of t.nodes) {
      plan.nodes[n.name]!.batch.push(...peersOf(t, n).map((p) => `route add ${p.podCIDR} via ${p.address} dev ${HOST_IFNAME}`));
    }
    return plan;
  },
  crossNodeHop: (_t, from, to) => ({ summary: `${from.name} routes ${to.podCIDR} via ${to.address} dev ${HOST_IFNAME}: straight to ${to.name}'s MAC, the router only switches the frame`, viaRouter: false }),
};
