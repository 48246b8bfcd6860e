import { emptyPlan, leadsIntoPodRange } from './common.js';
import type { PodNetwork } from './types.js';

/**
 * bgp (pod routes learned by BGP with BIRD, as Calico does): built in its own change. Until then
 * a topology asking for it is refused before anything is created.
 */
export const bgp: PodNetwork = {
  mode: 'bgp',
  check(_t, at) {
    at(['podNetwork', 'mode'], 'bgp: not built yet (use routed, host-gw or vxlan)');
  },
  keepsRouterRoute: (t, route) => !leadsIntoPodRange(t, route),
  plan: (t) => emptyPlan(t, 'bgp'),
  crossNodeHop: (_t, from, to) => ({ summary: `${from.name} sends it to the router, which learned ${to.podCIDR} from ${to.name} by BGP`, viaRouter: true }),
};
