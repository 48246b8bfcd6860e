import type { Node, Service, Topology } from '../topology/schema.js';

/**
 * trafficDistribution as Kubernetes v1.34 implements it, as data. Pure.
 *
 * The EndpointSlice controller (staging/src/k8s.io/endpointslice/trafficdist) writes hints: for a
 * Service with PreferClose, PreferSameZone or PreferSameNode, every ready endpoint whose Node has
 * a zone gets `hints.forZones: [<its zone>]`, and under PreferSameNode (feature gate
 * PreferSameTrafficDistribution, beta and on in v1.34) also `hints.forNodes: [<its node>]`.
 * Without trafficDistribution no endpoint has hints.
 *
 * kube-proxy (pkg/proxy/topology.go, topologyModeFromHints) then picks, per node and per Service
 * port, among the ready endpoints: those hinted for this node when every ready endpoint has a node
 * hint and one names this node; else those hinted for this node's zone when every ready endpoint has
 * a zone hint and one names this zone; else all of them (the fallback).
 */

/** The well-known label of a Node's zone (v1.LabelTopologyZone). */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

export type TrafficDistribution = NonNullable<Service['trafficDistribution']>;

/** discoveryv1.EndpointHints: the zones and nodes an endpoint is meant for. */
export interface EndpointHints {
  forZones: string[];
  forNodes: string[];
}

/** A Node's zone: its topology.kubernetes.io/zone label (undefined: none, or empty). */
export function nodeZone(node: Pick<Node, 'labels'> | undefined): string | undefined {
  const zone = node?.labels?.[ZONE_LABEL];
  return zone ? zone : undefined;
}

/** Every node's zone, by node name. */
export function nodeZones(t: Pick<Topology, 'nodes'>): Map<string, string | undefined> {
  return new Map(t.nodes.map((n) => [n.name, nodeZone(n)]));
}

/**
 * The hints the EndpointSlice controller writes for one endpoint (preferCloseHeuristic.update):
 * none for a Service without trafficDistribution or for an endpoint that is not ready; otherwise
 * its zone, if its node has one, and under PreferSameNode its node.
 */
export function endpointHints(trafficDistribution: TrafficDistribution | undefined, ep: { ready: boolean; node: string; zone?: string }): EndpointHints | undefined {
  if (trafficDistribution === undefined || !ep.ready) return undefined;
  const forZones = ep.zone !== undefined ? [ep.zone] : [];
  const forNodes = trafficDistribution === 'PreferSameNode' ? [ep.node] : [];
  return forZones.length > 0 || forNodes.length > 0 ? { forZones, forNodes } : undefined;
}

/** kube-proxy's topology mode for one node: "" (all endpoints), PreferSameZone or PreferSameNode. */
export type TopologyMode = '' | 'PreferSameZone' | 'PreferSameNode';

interface Hinted {
  ready: boolean;
  hints?: EndpointHints;
}

/** topologyModeFromHints: which hints this node follows, judged over the ready endpoints. */
export function topologyModeFromHints(endpoints: readonly Hinted[], nodeName: string, zone: string | undefined): TopologyMode {
  const ready = endpoints.filter((e) => e.ready);
  if (ready.length === 0) return '';
  const nodeHints = (e: Hinted) => e.hints?.forNodes ?? [];
  const zoneHints = (e: Hinted) => e.hints?.forZones ?? [];
  if (ready.every((e) => nodeHints(e).length > 0) && ready.some((e) => nodeHints(e).includes(nodeName))) return 'PreferSameNode';
  // A node without a zone label matches no zone hint (upstream compares with "").
  if (ready.every((e) => zoneHints(e).length > 0) && zone !== undefined && ready.some((e) => zoneHints(e).includes(zone))) return 'PreferSameZone';
  return '';
}

/** availableForTopology: whether an endpoint is used on this node in that mode (no fallback here; the mode already fell back). */
export function availableForTopology(e: Hinted, mode: TopologyMode, nodeName: string, zone: string | undefined): boolean {
  if (mode === 'PreferSameNode') return (e.hints?.forNodes ?? []).includes(nodeName);
  if (mode === 'PreferSameZone') return zone !== undefined && (e.hints?.forZones ?? []).includes(zone);
  return true;
}
