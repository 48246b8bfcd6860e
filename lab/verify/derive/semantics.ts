import { endpointsOf, externallyAccessible, type Endpoint } from '../../plan/endpoints.js';
import { bridgeAddressOf } from '../../topology/relations.js';
import type { Node, Service, ServicePort, Topology } from '../../topology/schema.js';
import { cidrContains, parseCidr, parseIPv4 } from '../../util/ipv4.js';
import { firstHost6, parseCidr6 } from '../../util/ipv6.js';

/**
 * What kube-proxy does with one connection, said from the topology alone (the Service, its pods'
 * conditions, the node that translates), never from the rules the lab wrote: a derived
 * walkthrough built on it catches a lab whose rules went wrong.
 */

/** How a connection reaches the Service: to its ClusterIP from inside, or from outside the cluster. */
export type Entry = 'clusterIP' | 'nodePort' | 'loadBalancer' | 'externalIP';

/** One endpoint that may answer: the pod, its address and the port it listens on. */
export interface Answerer {
  pod: string;
  node: string;
  address: string;
}

/** What becomes of a new connection on the translating node. */
export type Fate =
  | { kind: 'answered'; endpoints: Answerer[] }
  /** reject: the Service has no usable endpoint at all; drop: none under its Local policy on this node, or a source outside loadBalancerSourceRanges. */
  | { kind: 'reject' | 'drop'; why: string; firewall?: boolean };

/** Whether the entry is governed by the Local policy that applies to it (internal or external). */
export function localPolicy(service: Service, entry: Entry): boolean {
  if (entry === 'clusterIP') return service.internalTrafficPolicy === 'Local';
  return externallyAccessible(service) && service.externalTrafficPolicy === 'Local';
}

/**
 * Which endpoints may answer on `node`: ready ones by default; where the policy's set has no
 * ready one, its serving-terminating ones (upstream's CategorizeEndpoints). None: reject when the
 * Service has no usable endpoint anywhere, else drop (a Local policy without a local one).
 * Locality is the endpoint's nodeName (EndpointSlice); where it answers from is its pod's node.
 */
export function fateOf(t: Topology, service: Service, port: ServicePort, entry: Entry, node: string): Fate {
  const all = endpointsOf(t, service, port);
  const servingTerminating = (e: Endpoint) => !e.ready && e.serving && e.terminating;
  const usable = all.filter((e) => e.ready || servingTerminating(e));
  const candidates = localPolicy(service, entry) ? all.filter((e) => e.node === node) : all;
  const ready = candidates.filter((e) => e.ready);
  const chosen = ready.length > 0 ? ready : candidates.filter(servingTerminating);
  const hostOf = (e: Endpoint) => t.pods.find((p) => p.name === e.pod)?.node ?? e.node;
  if (chosen.length > 0) return { kind: 'answered', endpoints: chosen.map((e) => ({ pod: e.pod, node: hostOf(e), address: e.address })) };
  if (usable.length === 0) return { kind: 'reject', why: `${service.name} has no usable endpoint (none is ready or serving while terminating)` };
  return { kind: 'drop', why: `${service.name}'s ${entry === 'clusterIP' ? 'internal' : 'external'}TrafficPolicy is Local and ${node} has no usable endpoint of it` };
}

/** The source the pod sees: the client's own (undefined), or the address the node masqueraded it to. */
export function masqueradeSource(t: Topology, service: Service, entry: Entry, translating: Node, endpoint: Answerer, sender: string): string | undefined {
  const bridge = bridgeAddress(translating);
  if (entry === 'clusterIP') {
    // Pod sources are local traffic to the detector: not masqueraded, unless a pod reaches itself
    // (hairpin), --masquerade-all is on, or the detector does not see pods as local.
    if (endpoint.pod !== sender && !masqueradesPods(t, translating)) return undefined;
    return endpoint.node === translating.name ? bridge : crossNodeSource(t, translating);
  }
  if (localPolicy(service, entry)) return undefined; // Local keeps the client's address
  // Cluster: every external connection is marked; MASQUERADE takes the egress interface's address.
  if (endpoint.node === translating.name) return bridge;
  return crossNodeSource(t, translating);
}

/**
 * Whether the node masquerades its own pods' connections to a ClusterIP: with --masquerade-all, or
 * when the local-traffic detector does not match them. A pod's packets enter the node through its
 * bridge, so an interface detector sees the bridge's name, never the pod's veth.
 */
function masqueradesPods(t: Topology, node: Node): boolean {
  const k = t.kubeProxy;
  if (k.masqueradeAll) return true;
  if (k.detectLocalMode === 'BridgeInterface') return (k.detectLocal?.bridgeInterface ?? node.bridge) !== node.bridge;
  if (k.detectLocalMode === 'InterfaceNamePrefix') return !node.bridge.startsWith(k.detectLocal?.interfaceNamePrefix ?? 'veth');
  return false;
}

/** The node's bridge holds the first address of its pod CIDR. */
export function bridgeAddress(node: Node): string {
  // A node of the IPv6 view (topology/family.ts ipv6View): its bridge's first host of podCIDR6.
  const c6 = node.podCIDR.includes(':') ? parseCidr6(node.podCIDR) : undefined;
  if (c6) return firstHost6(c6);
  return bridgeAddressOf(node) || node.address;
}

/** Toward another node's pod: eth0's address, or under flannel's vxlan flannel.1's (the pod CIDR's network address). */
function crossNodeSource(t: Topology, node: Node): string {
  return t.podNetwork.mode === 'vxlan' ? node.podCIDR.split('/')[0]! : node.address;
}

/** loadBalancerSourceRanges: may this source use the load balancer IPs? (no ranges: anyone). */
export function sourceAllowed(service: Service, source: string): boolean {
  if (service.loadBalancerSourceRanges.length === 0) return true;
  const ip = parseIPv4(source);
  return ip !== undefined && service.loadBalancerSourceRanges.some((r) => {
    const c = parseCidr(r);
    return c !== undefined && cidrContains(c, ip);
  });
}

/** The Service's endpoint pods that are not among those that may answer: no connection may reach them. */
export function excludedPods(t: Topology, service: Service, answering: Set<string>): string[] {
  const pods = new Set(service.ports.flatMap((port) => endpointsOf(t, service, port).map((e) => e.pod)));
  return t.pods.filter((p) => pods.has(p.name) && !answering.has(p.name)).map((p) => p.name);
}
