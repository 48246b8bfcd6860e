import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isLargeCluster, syncScope } from '../../lab/plan/kube-proxy/scope.js';
import { planLab, planWorkloads } from '../../lab/plan/plan.js';
import { planScale, withScale } from '../../lab/plan/scale.js';
import { loadTopology } from '../../lab/topology/load.js';
import { scaleTopology } from '../../scripts/scale-topology.js';

const dir = mkdtempSync(join(tmpdir(), 'scale-topology-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const load = (name: string, pods: number, services = 0, opts: { ownPods?: boolean } = {}) => {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, scaleTopology(name, pods, services, opts));
  return loadTopology(path).topology;
};

describe('the scale benchmark topologies', () => {
  it('1000 pods pass validation and plan one namespace, veth pair and workload each, with distinct addresses', () => {
    const t = load('s1000', 1000);
    const plan = planLab(t);
    expect(plan.namespaces.filter((n) => n.role === 'pod')).toHaveLength(1000);
    expect(plan.workloads).toHaveLength(1000);
    expect(new Set(t.pods.map((p) => p.address)).size).toBe(1000);
    expect(plan.createBatch.filter((l) => l.startsWith('link add'))).toHaveLength(1000 + 3);
    // The workload process lives in a node's namespace: nodes last as long as the lab.
    expect(plan.workloadHome).toBe('s1000-node1');
  });

  it('1000 ClusterIP services over two pods give each node 1001 service chains', () => {
    const t = load('svc', 2, 1000);
    expect(t.services).toHaveLength(1001);
    const payload = planLab(t).kubeProxy[0]!.payload;
    expect(payload.match(/^:KUBE-SVC-/gm)).toHaveLength(1001);
  });

  it('ownPods: 1000 services over two pods of their own, so scaling web changes one Service (a partial sync of one)', () => {
    const t = load('own', 2, 1000, { ownPods: true });
    expect(t.pods.map((p) => p.name)).toEqual(['web-1', 'web-2', 'api-1', 'api-2']);
    const after = withScale(t, planScale(t, 'web', 3));
    expect(syncScope(t, after)).toEqual({ full: false, services: new Set(['default/web']) });
    expect(isLargeCluster(t)).toBe(true);
  });

  it('refuses more pods than two /22 ranges hold', () => {
    expect(() => scaleTopology('x', 3000)).toThrow(/at most/);
  });
});

describe('planWorkloads (lab revive)', () => {
  it('starts only the named pods\' workloads, creating nothing else', () => {
    const t = loadTopology('nodeport').topology;
    const plan = planWorkloads(t, ['web-2']);
    expect(plan.workloads.map((w) => w.pod)).toEqual(['web-2']);
    expect([plan.namespaces, plan.createBatch, plan.kubeProxy, plan.files]).toEqual([[], [], [], []]);
  });
});

