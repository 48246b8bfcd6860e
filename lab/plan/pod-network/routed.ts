import { emptyPlan } from './common.js';
import type { PodNetwork } from './types.js';

/**
 * routed (the default, the seed's "VPC router"): the router holds a static route per node's pod
 * CIDR, written in the topology file; nodes send other nodes' pod traffic to the router. The
 * mode adds nothing of its own.
 */
export const routed: PodNetwork = {
  mode: 'routed',
  check() {},
  keepsRouterRoute: () => true,
  plan: (t) => emptyPlan(t, 'routed'),
  crossNodeHop: (t, from, to) => {
    const router = t.routers.find((r) => r.interfaces.some((i) => i.network === from.network));
    return { summary: `${from.name} sends it to ${router?.name ?? 'the router'}, whose route for ${to.podCIDR} leads to ${to.name} (${to.address})`, viaRouter: true };
  },
};
