import type { LoadBalancerMode, RouterRoute, Topology } from '../../topology/schema.js';
import type { PodNetworkPlan, ProblemAt } from '../pod-network/types.js';

/**
 * How a LoadBalancer IP reaches the nodes, one module per mode (static, bgp, l2). Plan, apply and
 * the endpoint verbs ask the topology's module (loadBalancerOf) and never test the mode's name.
 */

/** Who announces one LoadBalancer IP, as MetalLB decides it for the lab as it is now. */
export interface Announcement {
  /** namespace/name */
  service: string;
  ip: string;
  policy: 'Cluster' | 'Local';
  /** The nodes announcing it, in file order; none: withdrawn everywhere. */
  nodes: string[];
}

/** A route a router must show for a LoadBalancer IP once the speakers settle: exactly these next hops (none: no route). */
export interface RouteExpectation {
  router: string;
  /** The router's namespace: read there only. */
  ns: string;
  /** With its prefix, e.g. 10.240.0.100/32. */
  to: string;
  /** Node addresses; [] when no node announces it. */
  via: string[];
}

/** A router's neighbour entry for a LoadBalancer IP (l2): once it exists, it must hold the leader's MAC. */
export interface NeighbourExpectation {
  router: string;
  ns: string;
  ip: string;
  /** The leader, whose eth0 MAC the entry must hold; undefined: nobody answers. */
  node: string | undefined;
  nodeNs: string | undefined;
}

export interface LoadBalancer {
  mode: LoadBalancerMode;
  /** How an announcement shows in the pictures: "BGP 10.240.0.100/32 from node1, node2", "ARP 10.240.0.100 from node1". */
  announcementLabel: (ip: string) => string;
  /** Mode-specific checks of a topology, before anything is planned (exit 2, file:line). */
  check(t: Topology, at: ProblemAt): void;
  /** Whether the router keeps one of the file's routes (announcing modes drop the routes to LoadBalancer IPs). */
  keepsRouterRoute(t: Topology, route: RouterRoute): boolean;
  /** Pure: the pod network plan with this mode's speakers and router settings added. */
  extend(t: Topology, podNetwork: PodNetworkPlan): PodNetworkPlan;
  /** Pure: who announces each LoadBalancer IP now ([] when nothing is announced: static). */
  announcements(t: Topology): Announcement[];
  /** Pure: the router routes the announcements lead to, which a sync awaits. */
  expectedRoutes(t: Topology): RouteExpectation[];
  /** Pure: the routers' neighbour entries the announcements lead to (l2), which a sync awaits. */
  expectedNeighbours(t: Topology): NeighbourExpectation[];
}
