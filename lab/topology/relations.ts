import { cidrContains, firstHost, parseCidr, parseIPv4 } from '../util/ipv4.js';
import type { Node, Pod, Service, Topology } from './schema.js';

/**
 * Facts about a topology that both its validation and its planning rely on, said once:
 * which pods a Service selects, and what lies inside the lab's own address space.
 */

/** A Service selects a pod when its (non-empty) selector's labels all match. */
export function selects(service: Service, pod: Pod): boolean {
  const entries = Object.entries(service.selector ?? {});
  return entries.length > 0 && entries.every(([k, v]) => pod.labels[k] === v);
}

/** A node's bridge address, its pods' gateway: as written, else the first address of its pod CIDR. */
export function bridgeAddressOf(node: Pick<Node, 'podCIDR' | 'bridgeAddress'>): string {
  if (node.bridgeAddress !== undefined) return node.bridgeAddress;
  const c = parseCidr(node.podCIDR);
  return c ? firstHost(c) : '';
}

/** The lab's own prefixes: its networks, the pod range and the service range. */
export const labPrefixes = (t: Pick<Topology, 'networks' | 'cluster'>): string[] => [...t.networks.map((n) => n.subnet), t.cluster.podCIDR, t.cluster.serviceCIDR];

/** True when an address or prefix lies inside the lab's own address space (no route may lead out of it). */
export function insideLab(prefixes: string[], target: string): boolean {
  const [addr, len] = target.split('/');
  const a = parseIPv4(addr!);
  if (a === undefined) return false;
  const prefix = len === undefined ? 32 : Number(len);
  return prefixes.some((p) => {
    const c = parseCidr(p);
    return c !== undefined && c.prefix <= prefix && cidrContains(c, a);
  });
}
