import type { PodNetworkMode, Topology } from '../../topology/schema.js';
import { bgp } from './bgp.js';
import { hostGw } from './host-gw.js';
import { routed } from './routed.js';
import type { PodNetwork } from './types.js';
import { vxlan } from './vxlan.js';

export type { CrossNodeHop, DaemonSpec, DrawnLink, NamespaceAdditions, PodNetwork, PodNetworkPlan, ProblemAt, Tunnel, Vtep } from './types.js';

/** One module per mode: the only place a mode's name leads to its code. */
const MODULES: Record<PodNetworkMode, PodNetwork> = { routed, 'host-gw': hostGw, vxlan, bgp };

/** The pod network module a topology asks for (podNetwork.mode, routed by default). */
export const podNetworkOf = (t: Pick<Topology, 'podNetwork'>): PodNetwork => MODULES[t.podNetwork.mode];
