import type { Service, Topology } from '../../topology/schema.js';
import { selects } from '../../topology/relations.js';
import { bgpSessions } from '../bgp-speakers.js';
import { endpointConditions } from '../endpoints.js';
import type { Announcement } from './types.js';

/**
 * MetalLB's speaker decisions, pure. An endpoint counts when it can serve (MetalLB's
 * EndpointCanServe: ready, or serving while terminating). BGP mode (bgp_controller.go's
 * ShouldAnnounce): with externalTrafficPolicy Cluster every speaker announces while the Service
 * has such an endpoint anywhere; with Local only the speakers on nodes that hold one.
 */

/** The nodes holding an endpoint of the Service that can serve. */
export function nodesThatCanServe(t: Topology, s: Service): Set<string> {
  return new Set(t.pods.filter((p) => selects(s, p) && (endpointConditions(p).ready || endpointConditions(p).serving)).map((p) => p.node));
}

/** The nodes running a speaker: those with a BGP session to a router on their network. */
export function speakerNodes(t: Topology): string[] {
  const sessions = bgpSessions(t);
  return t.nodes.filter((n) => sessions.some((s) => s.node.name === n.name)).map((n) => n.name);
}

export const loadBalancerServices = (t: Topology) => t.services.filter((s) => s.type === 'LoadBalancer' && s.loadBalancerIPs.length > 0);

/** Every LoadBalancer IP and the nodes whose BIRD announces it now. */
export function bgpAnnouncements(t: Topology): Announcement[] {
  const speakers = speakerNodes(t);
  return loadBalancerServices(t).flatMap((s) => {
    const serving = nodesThatCanServe(t, s);
    const nodes = s.externalTrafficPolicy === 'Local' ? speakers.filter((n) => serving.has(n)) : serving.size > 0 ? speakers : [];
    return s.loadBalancerIPs.map((ip) => ({ service: `${s.namespace}/${s.name}`, ip, policy: s.externalTrafficPolicy, nodes }));
  });
}

/** What changed between two sets of announcements: per IP and node, announced or withdrawn. */
export interface AnnouncementChange {
  ip: string;
  node: string;
  change: 'announced' | 'withdrawn';
}

export function announcementChanges(before: Announcement[], after: Announcement[]): AnnouncementChange[] {
  const key = (a: Announcement[]) => new Set(a.flatMap((x) => x.nodes.map((n) => `${x.ip} ${n}`)));
  const was = key(before);
  const now = key(after);
  const split = (k: string, change: AnnouncementChange['change']) => ({ ip: k.split(' ')[0]!, node: k.split(' ')[1]!, change });
  return [...[...now].filter((k) => !was.has(k)).map((k) => split(k, 'announced')), ...[...was].filter((k) => !now.has(k)).map((k) => split(k, 'withdrawn'))];
}

/** True when a router route leads to one of the lab's LoadBalancer IPs (an announcing mode makes it needless). */
export function leadsToLoadBalancerIP(t: Topology, to: string): boolean {
  const ip = to.replace(/\/32$/, '');
  return loadBalancerServices(t).some((s) => s.loadBalancerIPs.includes(ip));
}
