import { createHash } from 'node:crypto';
import type { Topology } from '../../topology/schema.js';
import { loadBalancerServices, nodesThatCanServe } from './announcements.js';

/**
 * MetalLB's layer-2 leader election, pure (its speaker's layer2_controller.go, ShouldAnnounce,
 * without the optional lease-based election): for each LoadBalancer IP the eligible nodes are
 * every node (Cluster) or the nodes with an endpoint that can serve (Local), none at all when the
 * Service has no such endpoint anywhere; they are sorted by SHA-256 of "<node>#<ip>", compared
 * byte by byte, and the first one answers ARP for the IP. Every speaker sorts the same list, so
 * they agree without talking; an IP's leader changes only when its eligibility does.
 */

/** The sort key MetalLB uses: the SHA-256 digest of node name, "#", IP. */
export const electionKey = (node: string, ip: string): Buffer => createHash('sha256').update(`${node}#${ip}`).digest();

/** The eligible nodes in MetalLB's order: the first one is the leader. */
export function electionOrder(eligible: string[], ip: string): string[] {
  return [...eligible].sort((a, b) => Buffer.compare(electionKey(a, ip), electionKey(b, ip)));
}

/** One LoadBalancer IP and the node that answers ARP for it (undefined: nobody, the IP goes silent). */
export interface L2Leader {
  service: string;
  ip: string;
  eligible: string[];
  leader: string | undefined;
}

export function l2Leaders(t: Topology): L2Leader[] {
  return loadBalancerServices(t).flatMap((s) => {
    const serving = nodesThatCanServe(t, s);
    const all = t.nodes.map((n) => n.name);
    const eligible = serving.size === 0 ? [] : s.externalTrafficPolicy === 'Local' ? all.filter((n) => serving.has(n)) : all;
    return s.loadBalancerIPs.map((ip) => {
      const order = electionOrder(eligible, ip);
      return { service: `${s.namespace}/${s.name}`, ip, eligible: order, leader: order[0] };
    });
  });
}
