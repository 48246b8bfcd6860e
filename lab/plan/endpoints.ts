import type { Pod, Service, ServicePort, Topology } from '../topology/schema.js';
import { selects } from '../topology/relations.js';

/** One ready backend of a service port, as an EndpointSlice would list it. */
export interface Endpoint {
  pod: string;
  node: string;
  ip: string;
  port: number;
  /** "ip:port", the form kube-proxy hashes and prints. */
  address: string;
}

export interface ServicePortView {
  service: Service;
  port: ServicePort;
  /** kube-proxy's ServicePortName: "namespace/name:portName" (no ":" for an unnamed port). */
  name: string;
  /** Lower case, as kube-proxy hashes it and as iptables names the match module. */
  protocol: 'tcp' | 'udp';
  endpoints: Endpoint[];
}


export function servicePortName(service: Service, port: ServicePort): string {
  return `${service.namespace}/${service.name}${port.name ? `:${port.name}` : ''}`;
}

/** Sorting as kube-proxy's endpoint cache does: by the "ip:port" string. */
const byAddress = (a: Endpoint, b: Endpoint) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0);

/**
 * Every service port with its ready endpoints: the input kube-proxy syncs from. Computed once
 * per topology object (topologies are not changed in place; a change makes a new one): a sync
 * asks for it per node and per ruleset. Callers must not change what it returns.
 */
export function servicePorts(t: Topology): ServicePortView[] {
  let views = viewsOf.get(t);
  if (!views) {
    views = computeServicePorts(t);
    viewsOf.set(t, views);
  }
  return views;
}
const viewsOf = new WeakMap<Topology, ServicePortView[]>();

function computeServicePorts(t: Topology): ServicePortView[] {
  return t.services.flatMap((service) =>
    service.ports.map((port) => ({
      service,
      port,
      name: servicePortName(service, port),
      protocol: port.protocol === 'UDP' ? ('udp' as const) : ('tcp' as const),
      endpoints: t.pods
        .filter((pod) => pod.ready && selects(service, pod))
        .map((pod) => ({ pod: pod.name, node: pod.node, ip: pod.address, port: port.targetPort, address: `${pod.address}:${port.targetPort}` }))
        .sort(byAddress),
    })),
  );
}

/** The ports a pod's workload listens on: every targetPort of a service that selects it. */
export function podPorts(t: Topology, pod: Pod): number[] {
  const ports = new Set<number>();
  for (const s of t.services) if (selects(s, pod)) for (const p of s.ports) ports.add(p.targetPort);
  return [...ports].sort((a, b) => a - b);
}
