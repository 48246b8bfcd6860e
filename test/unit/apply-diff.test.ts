import { describe, expect, it } from 'vitest';
import { applyDiff, isEmptyDiff } from '../../lab/plan/apply-diff.js';
import { loadTopology } from '../../lab/topology/load.js';

/** lab apply's plan: what an edited topology changes on a running lab, and what it may not. */
const nodeport = (overrides: Record<string, string> = {}) => loadTopology('nodeport', overrides).topology;

describe('applyDiff', () => {
  it('the same file changes nothing', () => {
    const d = applyDiff(nodeport(), nodeport());
    expect(d.refused).toEqual([]);
    expect(isEmptyDiff(d)).toBe(true);
  });

  it('a Service changed, a pod unready: Services and pod conditions, nothing refused', () => {
    const d = applyDiff(nodeport(), nodeport({ 'services.web.externalTrafficPolicy': 'Local', 'pods.web-2.ready': 'false' }));
    expect(d).toMatchObject({ refused: [], services: { added: [], changed: ['default/web'], removed: [] }, pods: { added: [], removed: [], changed: ['web-2'], restarted: [] } });
  });

  it('a pod added and one deleted; a new targetPort restarts the workloads that serve it', () => {
    const before = nodeport();
    const after = { ...before, pods: [before.pods[0]!, { ...before.pods[1]!, name: 'web-3', address: '10.244.1.7' }] };
    expect(applyDiff(before, after).pods).toEqual({ added: ['web-3'], removed: ['web-2'], changed: [], restarted: [] });
    const ports = nodeport({ 'services.web.ports': '[{name: https, port: 443, targetPort: 9443, nodePort: 32000}]' });
    expect(applyDiff(before, ports).pods.restarted).toEqual(['web-1', 'web-2']);
    // The same port number, now UDP: the workloads must open a UDP socket there.
    const udp = nodeport({ 'services.web.ports.https.protocol': 'UDP' });
    expect(applyDiff(before, udp).pods.restarted).toEqual(['web-1', 'web-2']);
  });

  it('a Service deleted and one added', () => {
    const before = nodeport();
    const svc = { ...before.services[0]!, name: 'other', clusterIP: '172.31.0.9', ports: [{ ...before.services[0]!.ports[0]!, nodePort: 32001 }] };
    expect(applyDiff(before, { ...before, services: [svc] }).services).toEqual({ added: ['default/other'], changed: [], removed: ['default/web'] });
  });

  it('refuses what only down and up can change: another lab, a node, a network, a pod moved', () => {
    const d = applyDiff(nodeport(), nodeport({ lab: 'np2', 'nodes.node2.address': '10.240.0.6', 'routers.router.routes': '[]', 'pods.web-1.address': '10.244.0.9', 'kubeProxy.mode': 'nftables' }));
    expect(d.refused).toEqual(['the file is for lab "np2", not "nodeport"', 'routers changed', 'nodes changed', 'kubeProxy changed', 'pod web-1: address changed']);
  });
});

describe('lab apply and EndpointSlices', () => {
  it("a change to a Service's hand-written slices changes that Service, even when nothing else does", async () => {
    const { join } = await import('node:path');
    const file = join(import.meta.dirname, '..', 'fixtures', 'upstream-worlds', 'node-ports.yaml');
    const before = loadTopology(file).topology;
    const after = loadTopology(file, { 'endpointSlices.svc1-1.endpoints': '[{address: 10.180.0.1, ready: false, serving: true, terminating: true}]' }).topology;
    const diff = applyDiff(before, after);
    expect(diff.refused).toEqual([]);
    expect(diff.services.changed).toEqual(['ns1/svc1']);
    expect(applyDiff(before, loadTopology(file).topology).services.changed).toEqual([]);
  });
});
