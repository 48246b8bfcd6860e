import type { Pod, Service, ServicePort, Topology } from '../topology/schema.js';
import { selects } from '../topology/relations.js';
import { availableForTopology, endpointHints, nodeZones, topologyModeFromHints, type EndpointHints, type TopologyMode } from './topology-hints.js';
import { joinHostPort } from '../util/ipv6.js';

/**
 * One backend of a service port, as an EndpointSlice lists it, with its conditions:
 * ready (serving and not terminating), serving (the readiness probe passes), terminating (the pod
 * is being deleted and serves out its grace period).
 */
export interface Endpoint {
  pod: string;
  node: string;
  ip: string;
  port: number;
  /** "ip:port", the form kube-proxy hashes and prints. */
  address: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /** The endpoint's zone: its node's topology.kubernetes.io/zone label (absent: none). */
  zone?: string;
  /** The hints the EndpointSlice controller wrote for it (trafficDistribution; absent: none). */
  hints?: EndpointHints;
  /** The hand-written EndpointSlice (endpointSlices[].name) that lists it; absent: the controller's, from a selected pod. */
  slice?: string;
}

export interface ServicePortView {
  service: Service;
  port: ServicePort;
  /** kube-proxy's ServicePortName: "namespace/name:portName" (no ":" for an unnamed port). */
  name: string;
  /** Lower case, as kube-proxy hashes it and as iptables names the match module. */
  protocol: 'tcp' | 'udp' | 'sctp';
  /** The ready endpoints. */
  endpoints: Endpoint[];
  /** Endpoints that are serving but terminating (not ready): kube-proxy's fallback when no ready one is left. */
  terminating: Endpoint[];
  /** Endpoints whose readiness probe fails (serving=false): listed by the EndpointSlice, used by no rule. */
  notServing: Endpoint[];
}

export function servicePortName(service: Service, port: ServicePort): string {
  return `${service.namespace}/${service.name}${port.name ? `:${port.name}` : ''}`;
}

/** Sorting as kube-proxy's endpoint cache does: by the "ip:port" string. */
const byAddress = (a: Endpoint, b: Endpoint) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0);

/** An EndpointSlice entry's conditions. */
export type EndpointConditions = Pick<Endpoint, 'ready' | 'serving' | 'terminating'>;

/** An EndpointSlice's conditions for a pod: serving is its readiness probe, ready is serving and not terminating. */
export function endpointConditions(pod: Pick<Pod, 'ready' | 'terminating'>): EndpointConditions {
  return { ready: pod.ready && !pod.terminating, serving: pod.ready, terminating: pod.terminating };
}

/**
 * Every service port with its usable endpoints (ready, and serving-terminating): the input
 * kube-proxy syncs from. Computed once per topology object (topologies are not changed in place;
 * a change makes a new one): a sync asks for it per node and per ruleset. Callers must not
 * change what it returns.
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

/**
 * Every endpoint of a Service port, in any condition, sorted: from the pods its selector picks (the
 * EndpointSlice controller's), or, for a Service without one, from the endpointSlices naming it.
 */
export function endpointsOf(t: Topology, service: Service, port: ServicePort): Endpoint[] {
  const fromPods = t.pods
    .filter((pod) => selects(service, pod))
    .flatMap((pod) => {
      const target = targetPortOf(pod, port);
      return target === undefined ? [] : [{ pod: pod.name, node: pod.node, ip: pod.address, port: target, address: joinHostPort(pod.address, target), ...endpointConditions(pod) }];
    });
  const zones = nodeZones(t);
  return [...fromPods, ...sliceEndpoints(t, service, port)].map((e) => withTopology(e, zones.get(e.node), service)).sort(byAddress);
}

/**
 * Where a Service port reaches this pod (the EndpointSlice controller's FindPort): a numeric
 * targetPort as it is; a named one, the containerPort the pod declares under that name with the
 * port's protocol; undefined when it declares none, and the pod is then no endpoint of that port.
 */
export function targetPortOf(pod: Pick<Pod, 'ports'>, port: Pick<ServicePort, 'targetPort' | 'protocol'>): number | undefined {
  if (typeof port.targetPort === 'number') return port.targetPort;
  return pod.ports?.find((p) => p.name === port.targetPort && p.protocol === port.protocol)?.containerPort;
}

/** The endpoint's zone (its node's) and the hints the EndpointSlice controller gives it under trafficDistribution. */
function withTopology(e: Endpoint, zone: string | undefined, service: Service): Endpoint {
  const hints = endpointHints(service.trafficDistribution, { ready: e.ready, node: e.node, zone });
  return { ...e, ...(zone !== undefined ? { zone } : {}), ...(hints ? { hints } : {}) };
}

/**
 * The endpoints declared in the Service's EndpointSlices for this port (matched by port name and
 * protocol, as kube-proxy's EndpointSliceCache does): the slice's port, the endpoint's nodeName
 * (none: local to no node; its `host` is still where the pod runs), the API's condition defaults
 * (serving = ready). The same ip:port in two slices counts once, the first.
 */
function sliceEndpoints(t: Topology, service: Service, port: ServicePort): Endpoint[] {
  if (service.selector !== undefined) return [];
  const seen = new Map<string, Endpoint>();
  for (const slice of t.endpointSlices ?? []) {
    if (slice.service !== service.name || slice.namespace !== service.namespace) continue;
    for (const sp of slice.ports) {
      if (sp.name !== port.name || sp.protocol !== port.protocol) continue;
      for (const e of slice.endpoints) {
        const address = joinHostPort(e.address, sp.port);
        if (seen.has(address)) continue;
        const pod = t.pods.find((p) => p.address === e.address);
        seen.set(address, { pod: pod?.name ?? e.address, node: e.nodeName ?? '', ip: e.address, port: sp.port, address, ready: e.ready, serving: e.serving ?? e.ready, terminating: e.terminating, slice: slice.name });
      }
    }
  }
  return [...seen.values()];
}

function computeServicePorts(t: Topology): ServicePortView[] {
  return t.services.flatMap((service) =>
    service.ports.map((port) => {
      const all = endpointsOf(t, service, port);
      return {
        service,
        port,
        name: servicePortName(service, port),
        protocol: port.protocol.toLowerCase() as 'tcp' | 'udp' | 'sctp',
        endpoints: all.filter((e) => e.ready),
        terminating: all.filter((e) => !e.ready && e.serving && e.terminating),
        notServing: all.filter((e) => !e.serving),
      };
    }),
  );
}

/** The API's ExternallyAccessible: a NodePort or LoadBalancer, or a ClusterIP Service with external IPs. */
export const externallyAccessible = (service: Pick<Service, 'type' | 'externalIPs'>) => service.type !== 'ClusterIP' || (service.externalIPs ?? []).length > 0;

/** kube-proxy's UsesClusterEndpoints / UsesLocalEndpoints for a service. */
export function trafficPolicies(service: Service) {
  const external = externallyAccessible(service);
  const externalLocal = external && service.externalTrafficPolicy === 'Local';
  const internalLocal = service.internalTrafficPolicy === 'Local';
  return { external, externalLocal, internalLocal, usesCluster: !internalLocal || external, usesLocal: internalLocal || externalLocal };
}

export interface CategorizedEndpoints {
  /** Endpoints for Cluster traffic policy (empty when the service never uses it). */
  cluster: Endpoint[];
  /** This node's endpoints for Local traffic policy (empty when the service never uses it). */
  local: Endpoint[];
  /** Every endpoint this node can send to: the union of the two, sorted. */
  reachable: Endpoint[];
  /** Whether the service has a usable endpoint anywhere in the cluster. */
  hasAny: boolean;
  /** The hints this node's Cluster endpoints follow ("": none, every ready endpoint). */
  topologyMode: TopologyMode;
}

/**
 * kube-proxy's CategorizeEndpoints (pkg/proxy/topology.go, v1.34): ready endpoints by default,
 * for Cluster policy only those the topology hints give this node (topology-hints.ts, with its
 * fallback to all); when a policy's set has no ready endpoint, the serving-terminating ones
 * instead, decided independently for Cluster (any node) and Local (this node, hints ignored).
 * `zone` is this node's zone label. Pure.
 */
export function categorizeEndpoints(sp: Pick<ServicePortView, 'service' | 'endpoints' | 'terminating'>, node: string, zone?: string): CategorizedEndpoints {
  const p = trafficPolicies(sp.service);
  const pick = (ready: Endpoint[], terminating: Endpoint[]) => (ready.length > 0 ? ready : terminating);
  const topologyMode = p.usesCluster ? topologyModeFromHints(sp.endpoints, node, zone) : '';
  const cluster = p.usesCluster ? pick(sp.endpoints.filter((e) => availableForTopology(e, topologyMode, node, zone)), sp.terminating) : [];
  const isLocal = (e: Endpoint) => e.node === node;
  const local = p.usesLocal ? pick(sp.endpoints.filter(isLocal), sp.terminating.filter(isLocal)) : [];
  const hasAny = sp.endpoints.length > 0 || sp.terminating.length > 0;
  const byAddr = new Map([...cluster, ...local].map((e) => [e.address, e]));
  const reachable = [...byAddr.values()].sort(byAddress);
  return { cluster, local, reachable, hasAny, topologyMode };
}

/**
 * The ports a pod's workload listens on: every targetPort (resolved for it) of a service that
 * selects it, every port of a slice naming it; with `protocol`, only the ports of that protocol
 * (UDP: where it answers datagrams too).
 */
export function podPorts(t: Topology, pod: Pod, protocol?: 'UDP'): number[] {
  const ports = new Set<number>();
  const wanted = (p: { protocol: string }) => protocol === undefined || p.protocol === protocol;
  for (const s of t.services) {
    if (!selects(s, pod)) continue;
    for (const p of s.ports) {
      if (!wanted(p)) continue;
      const target = targetPortOf(pod, p);
      if (target !== undefined) ports.add(target);
    }
  }
  // And every port of an EndpointSlice that lists its address.
  for (const slice of t.endpointSlices ?? []) if (slice.endpoints.some((e) => e.address === pod.address)) for (const p of slice.ports) if (wanted(p)) ports.add(p.port);
  return [...ports].sort((a, b) => a - b);
}
