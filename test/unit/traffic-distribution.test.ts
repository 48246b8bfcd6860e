import { describe, expect, it } from 'vitest';
import { categorizeEndpoints, servicePorts, type Endpoint } from '../../lab/plan/endpoints.js';
import { kubeProxyRules } from '../../lab/plan/kube-proxy/iptables.js';
import { nftablesRules } from '../../lab/plan/kube-proxy/nftables.js';
import { endpointHints, nodeZone, topologyModeFromHints, ZONE_LABEL } from '../../lab/plan/topology-hints.js';
import { loadTopology } from '../../lab/topology/load.js';
import type { Service } from '../../lab/topology/schema.js';
import { traceIptables, traceNftables } from './packet-flow.js';

/**
 * trafficDistribution: the EndpointSlice controller's hints (trafficdist.go's preferCloseHeuristic)
 * and kube-proxy's per-node choice from them (topology.go's CategorizeEndpoints and
 * topologyModeFromHints), checked with the cases of upstream's TestCategorizeEndpoints that carry
 * hints, then the rules both proxy modes write for the traffic-distribution scenario.
 */

describe('EndpointSlice hints (trafficdist, v1.34)', () => {
  const ep = (over: Partial<{ ready: boolean; node: string; zone?: string }> = {}) => ({ ready: true, node: 'node1', zone: 'zone-a', ...over });
  it('PreferClose and PreferSameZone: each ready endpoint is hinted for its own zone only', () => {
    expect(endpointHints('PreferClose', ep())).toEqual({ forZones: ['zone-a'], forNodes: [] });
    expect(endpointHints('PreferSameZone', ep({ zone: 'zone-b' }))).toEqual({ forZones: ['zone-b'], forNodes: [] });
  });
  it('PreferSameNode: its node as well as its zone', () => {
    expect(endpointHints('PreferSameNode', ep())).toEqual({ forZones: ['zone-a'], forNodes: ['node1'] });
    expect(endpointHints('PreferSameNode', ep({ zone: undefined }))).toEqual({ forZones: [], forNodes: ['node1'] });
  });
  it('no hints without trafficDistribution, for an endpoint that is not ready, or for one without a zone under PreferClose', () => {
    expect(endpointHints(undefined, ep())).toBeUndefined();
    expect(endpointHints('PreferClose', ep({ ready: false }))).toBeUndefined();
    expect(endpointHints('PreferClose', ep({ zone: undefined }))).toBeUndefined();
  });
  it("a node's zone is its topology.kubernetes.io/zone label; empty or missing is none", () => {
    expect(nodeZone({ labels: { [ZONE_LABEL]: 'zone-a' } })).toBe('zone-a');
    expect(nodeZone({ labels: { [ZONE_LABEL]: '' } })).toBeUndefined();
    expect(nodeZone({})).toBeUndefined();
  });
});

/** An upstream BaseEndpointInfo as a lab endpoint: IsLocal means on node "local". */
interface Up { ip: string; zones?: string[]; nodes?: string[]; ready?: boolean; local?: boolean }
const endpoint = (u: Up): Endpoint => {
  const [ip, port] = u.ip.split(':') as [string, string];
  const ready = u.ready ?? true;
  return { pod: u.ip, node: u.local ? 'local' : 'remote', ip, port: Number(port), address: u.ip, ready, serving: ready, terminating: false, ...(u.zones || u.nodes ? { hints: { forZones: u.zones ?? [], forNodes: u.nodes ?? [] } } : {}) };
};
const service = (over: Partial<Service> = {}) => ({ type: 'ClusterIP', externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', ...over }) as Service;
const sorted = (es: Endpoint[]) => es.map((e) => e.address).sort();

interface Case { name: string; zone?: string; node?: string; service?: Partial<Service>; endpoints: Up[]; cluster: string[]; local?: string[]; all?: string[] }
const four = (zones: (string[] | undefined)[], ready: boolean[] = [true, true, true, true]): Up[] => zones.map((z, i) => ({ ip: `10.1.2.${i + 3}:80`, zones: z, ready: ready[i] }));
const ABCA = [['zone-a'], ['zone-b'], ['zone-c'], ['zone-a']];

/** TestCategorizeEndpoints' cases with hints (pkg/proxy/topology_test.go), v1.34 semantics: hints count whatever the annotation. */
const CASES: Case[] = [
  { name: 'normal endpoint filtering', zone: 'zone-a', endpoints: four(ABCA), cluster: ['10.1.2.3:80', '10.1.2.6:80'] },
  { name: 'empty node labels', endpoints: [{ ip: '10.1.2.3:80', zones: ['zone-a'] }], cluster: ['10.1.2.3:80'] },
  { name: 'node in different zone, no endpoint filtering', zone: 'zone-b', endpoints: [{ ip: '10.1.2.3:80', zones: ['zone-a'] }], cluster: ['10.1.2.3:80'] },
  { name: 'unready endpoint', zone: 'zone-a', endpoints: four(ABCA, [true, true, true, false]), cluster: ['10.1.2.3:80'] },
  { name: 'only unready endpoints in same zone (should not filter)', zone: 'zone-a', endpoints: four(ABCA, [false, true, true, false]), cluster: ['10.1.2.4:80', '10.1.2.5:80'] },
  { name: 'missing hints, no filtering applied', zone: 'zone-a', endpoints: four([['zone-a'], ['zone-b'], undefined, ['zone-a']]), cluster: ['10.1.2.3:80', '10.1.2.4:80', '10.1.2.5:80', '10.1.2.6:80'] },
  {
    name: 'multiple hints per endpoint, filtering includes any endpoint with zone included',
    zone: 'zone-c',
    endpoints: four([['zone-a', 'zone-b', 'zone-c'], ['zone-b', 'zone-c'], ['zone-b', 'zone-d'], ['zone-c']]),
    cluster: ['10.1.2.3:80', '10.1.2.4:80', '10.1.2.6:80'],
  },
  {
    name: 'externalTrafficPolicy: Local, topology ignored for Local endpoints',
    zone: 'zone-a',
    service: { type: 'NodePort', externalTrafficPolicy: 'Local' },
    endpoints: four(ABCA).map((e, i) => ({ ...e, local: i < 2 })),
    cluster: ['10.1.2.3:80', '10.1.2.6:80'],
    local: ['10.1.2.3:80', '10.1.2.4:80'],
    all: ['10.1.2.3:80', '10.1.2.4:80', '10.1.2.6:80'],
  },
  {
    name: 'internalTrafficPolicy: Local, topology ignored for Local endpoints',
    zone: 'zone-a',
    service: { type: 'NodePort', internalTrafficPolicy: 'Local' },
    endpoints: four(ABCA).map((e, i) => ({ ...e, local: i < 2 })),
    cluster: ['10.1.2.3:80', '10.1.2.6:80'],
    local: ['10.1.2.3:80', '10.1.2.4:80'],
    all: ['10.1.2.3:80', '10.1.2.4:80', '10.1.2.6:80'],
  },
  // PreferSameNode (topologyModeFromHints with PreferSameTrafficDistribution on, as in v1.34).
  {
    name: 'node hints on every endpoint, one for this node: only that one',
    zone: 'zone-a',
    node: 'node1',
    endpoints: [
      { ip: '10.1.2.3:80', zones: ['zone-a'], nodes: ['node1'] },
      { ip: '10.1.2.4:80', zones: ['zone-a'], nodes: ['node2'] },
      { ip: '10.1.2.5:80', zones: ['zone-b'], nodes: ['node3'] },
    ],
    cluster: ['10.1.2.3:80'],
  },
  {
    name: 'node hints on every endpoint, none for this node: the zone hints decide',
    zone: 'zone-a',
    node: 'node4',
    endpoints: [
      { ip: '10.1.2.3:80', zones: ['zone-a'], nodes: ['node1'] },
      { ip: '10.1.2.4:80', zones: ['zone-a'], nodes: ['node2'] },
      { ip: '10.1.2.5:80', zones: ['zone-b'], nodes: ['node3'] },
    ],
    cluster: ['10.1.2.3:80', '10.1.2.4:80'],
  },
  {
    name: 'an endpoint without a node hint: node hints ignored, zone hints decide',
    zone: 'zone-b',
    node: 'node1',
    endpoints: [
      { ip: '10.1.2.3:80', zones: ['zone-a'], nodes: ['node1'] },
      { ip: '10.1.2.5:80', zones: ['zone-b'] },
    ],
    cluster: ['10.1.2.5:80'],
  },
  {
    name: 'neither this node nor its zone hinted: every ready endpoint',
    zone: 'zone-c',
    node: 'node9',
    endpoints: [
      { ip: '10.1.2.3:80', zones: ['zone-a'], nodes: ['node1'] },
      { ip: '10.1.2.5:80', zones: ['zone-b'], nodes: ['node2'] },
    ],
    cluster: ['10.1.2.3:80', '10.1.2.5:80'],
  },
];

describe('CategorizeEndpoints with topology hints (upstream TestCategorizeEndpoints)', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const endpoints = c.endpoints.map(endpoint);
      const got = categorizeEndpoints({ service: service(c.service), endpoints: endpoints.filter((e) => e.ready), terminating: [] }, c.node ?? 'local', c.zone);
      expect(sorted(got.cluster)).toEqual(c.cluster);
      if (c.local) expect(sorted(got.local)).toEqual(c.local);
      expect(sorted(got.reachable)).toEqual(c.all ?? c.cluster);
    });
  }

  it('only ready endpoints decide the mode (unready ones carry no hints anyway)', () => {
    const eps = four(ABCA, [false, true, true, false]).map(endpoint);
    expect(topologyModeFromHints(eps, 'n', 'zone-a')).toBe('');
    expect(topologyModeFromHints(eps, 'n', 'zone-b')).toBe('PreferSameZone');
    expect(topologyModeFromHints([], 'n', 'zone-b')).toBe('');
  });
});

describe('the traffic-distribution scenario: hints and each node\'s rules, both modes', () => {
  const load = (set: Record<string, string> = {}) => loadTopology('traffic-distribution', set).topology;
  const trace = (t: ReturnType<typeof load>, node: string, mode: 'iptables' | 'nftables') =>
    mode === 'iptables' ? traceIptables(kubeProxyRules(t, node), '10.244.0.10', '172.31.0.5', 443).output : traceNftables(nftablesRules(t, node), '10.244.0.10', '172.31.0.5', 443).output;

  it("every endpoint takes its node's zone and is hinted for it", () => {
    const [sp] = servicePorts(load());
    expect(sp!.endpoints.map((e) => [e.pod, e.zone, e.hints?.forZones])).toEqual([
      ['web-1', 'zone-a', ['zone-a']],
      ['web-2', 'zone-b', ['zone-b']],
      ['web-3', 'zone-c', ['zone-c']],
    ]);
  });

  for (const mode of ['iptables', 'nftables'] as const) {
    it(`${mode}: each node sends ClusterIP traffic to its own zone's pod`, () => {
      const t = load();
      expect(trace(t, 'node1', mode)).toBe('10.244.0.3:8443');
      expect(trace(t, 'node2', mode)).toBe('10.244.1.2:8443');
      expect(trace(t, 'node3', mode)).toBe('10.244.2.2:8443');
    });

    it(`${mode}: with web-1 not ready, node1 (zone-a) falls back to every endpoint while node2 keeps its own`, () => {
      const t = load({ 'pods.web-1.ready': 'false' });
      expect(trace(t, 'node1', mode)).toBe('10.244.1.2:8443, 10.244.2.2:8443');
      expect(trace(t, 'node2', mode)).toBe('10.244.1.2:8443');
    });

    it(`${mode}: without trafficDistribution every node spreads over all three (the test can fail)`, () => {
      const t = load({ 'services.web.trafficDistribution': '' });
      for (const n of ['node1', 'node2', 'node3']) expect(trace(t, n, mode)).toBe('10.244.0.3:8443, 10.244.1.2:8443, 10.244.2.2:8443');
    });

    it(`${mode}: a node without a zone label ignores zone hints`, () => {
      const t = load({ 'nodes.node2.labels': '{}' });
      // web-2 has no zone now, so not every endpoint has a zone hint: nobody filters.
      expect(trace(t, 'node1', mode)).toBe('10.244.0.3:8443, 10.244.1.2:8443, 10.244.2.2:8443');
    });

    it(`${mode}: PreferSameNode keeps each node to its own pod, and a node without one to its zone`, () => {
      const t = load({ 'services.web.trafficDistribution': 'PreferSameNode' });
      expect(trace(t, 'node1', mode)).toBe('10.244.0.3:8443');
      const lessPods = { ...t, pods: t.pods.map((p) => (p.name === 'web-3' ? { ...p, node: 'node1', address: '10.244.0.4' } : p)) };
      // node3 has no pod now: no node hint for it, no endpoint in zone-c: every endpoint.
      expect(trace(lessPods, 'node3', mode)).toBe('10.244.0.3:8443, 10.244.0.4:8443, 10.244.1.2:8443');
      // node1 has two: both, not web-2.
      expect(trace(lessPods, 'node1', mode)).toBe('10.244.0.3:8443, 10.244.0.4:8443');
    });
  }
});
