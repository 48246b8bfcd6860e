import type { LoadBalancerMode, Topology } from '../../topology/schema.js';
import { bgpLoadBalancer } from './bgp.js';
import { l2LoadBalancer } from './l2.js';
import { staticLoadBalancer } from './static.js';
import type { LoadBalancer } from './types.js';

export type { Announcement, LoadBalancer, NeighbourExpectation, RouteExpectation } from './types.js';
export { announcementChanges, type AnnouncementChange } from './announcements.js';

/** One module per mode: the only place a mode's name leads to its code. */
const MODULES: Record<LoadBalancerMode, LoadBalancer> = { static: staticLoadBalancer, bgp: bgpLoadBalancer, l2: l2LoadBalancer };

/** The load balancer module a topology asks for (loadBalancer.mode, static by default). */
export const loadBalancerOf = (t: Pick<Topology, 'loadBalancer'>): LoadBalancer => MODULES[t.loadBalancer.mode];
