import { describe, expect, it } from 'vitest';
import { LabError } from '../../lab/errors.js';
import { endpointChain, serviceChain, serviceLocalChain } from '../../lab/plan/kube-proxy/hash.js';
import { kubeProxyRules } from '../../lab/plan/kube-proxy/iptables.js';
import { planResync } from '../../lab/plan/kube-proxy/resync.js';
import { parseSave } from '../../lab/plan/kube-proxy/rules.js';
import { planLab, planPods } from '../../lab/plan/plan.js';
import {
  allocatePodAddress,
  applyPodChanges,
  emptyChanges,
  endpointsDiff,
  endpointsView,
  groupMembers,
  inPodCidr,
  MAX_REPLICAS,
  planScale,
  recordReadiness,
  recordScale,
  withScale,
} from '../../lab/plan/scale.js';
import { loadTopology } from '../../lab/topology/load.js';
import type { Topology } from '../../lab/topology/schema.js';

const nodeport = (): Topology => structuredClone(loadTopology('nodeport').topology);
const SPN = 'default/web:https';
const sep = (address: string) => endpointChain(SPN, 'tcp', address);

describe('planScale', () => {
  it('continues the numbering, spreads new pods round-robin and gives each the lowest free address of its node', () => {
    const t = nodeport();
    const plan = planScale(t, 'web', 5);
    expect(plan.from).toBe(2);
    expect(plan.add.map((p) => [p.name, p.node, p.address])).toEqual([
      ['web-3', 'node1', '10.244.0.2'],
      ['web-4', 'node2', '10.244.1.3'],
      ['web-5', 'node1', '10.244.0.4'],
    ]);
    for (const p of plan.add) {
      expect(p.labels).toEqual({ app: 'web' });
      expect(p.ready).toBe(true);
      expect(inPodCidr(t.nodes.find((n) => n.name === p.node)!, p.address)).toBe(true);
    }
    expect(plan.remove).toEqual([]);
  });

  it('never hands out cbr0\'s address, the network or broadcast address, or one in use', () => {
    const node = nodeport().nodes[0]!;
    expect(allocatePodAddress(node, new Set())).toBe('10.244.0.2');
    expect(allocatePodAddress(node, new Set(['10.244.0.2', '10.244.0.3']))).toBe('10.244.0.4');
    const small = { ...node, podCIDR: '10.244.0.0/30' };
    expect(allocatePodAddress(small, new Set())).toBe('10.244.0.2');
    expect(allocatePodAddress(small, new Set(['10.244.0.2']))).toBeUndefined();
  });

  it('fills the node with fewer pods of the group first', () => {
    const t = nodeport();
    t.pods.push({ ...t.pods[0]!, name: 'web-3', address: '10.244.0.4' }); // node1 now has two
    expect(planScale(t, 'web', 4).add.map((p) => p.node)).toEqual(['node2']);
  });

  it('scales down by removing the highest-numbered pods (web-10 after web-9)', () => {
    const t = nodeport();
    for (const [n, a] of [[9, '10.244.0.9'], [10, '10.244.0.10']] as const) t.pods.push({ ...t.pods[0]!, name: `web-${n}`, address: a });
    expect(groupMembers(t, 'web').map((p) => p.name)).toEqual(['web-1', 'web-2', 'web-9', 'web-10']);
    expect(planScale(t, 'web', 1).remove.map((p) => p.name)).toEqual(['web-10', 'web-9', 'web-2']);
  });

  it('skips names other hosts already use', () => {
    const t = nodeport();
    t.clients.push({ name: 'web-3', network: 'clients', address: '10.241.0.9' });
    expect(planScale(t, 'web', 3).add.map((p) => p.name)).toEqual(['web-4']);
  });

  it('brings back pods of the file that an earlier scale removed, as the file has them', () => {
    const file = nodeport();
    let changes = recordScale(emptyChanges(), planScale(file, 'web', 0));
    expect(changes.removed).toEqual(['web-2', 'web-1']);
    const zero = applyPodChanges(file, changes);
    expect(zero.pods).toEqual([]);
    const up = planScale(zero, 'web', 3, { template: changes.templates.web, restorable: groupMembers(file, 'web') });
    expect(up.add.map((p) => [p.name, p.node, p.address])).toEqual([
      ['web-1', 'node1', '10.244.0.3'],
      ['web-2', 'node2', '10.244.1.2'],
      ['web-3', 'node1', '10.244.0.2'],
    ]);
    changes = recordScale(changes, up);
    expect(changes.removed).toEqual([]);
    expect(changes.added.map((p) => p.name)).toEqual(['web-3']);
  });

  it('refuses what it cannot do, with exit code 2', () => {
    const t = nodeport();
    const refuse = (f: () => unknown, message: RegExp) => {
      try {
        f();
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(LabError);
        expect((err as LabError).exitCode).toBe(2);
        expect((err as LabError).message).toMatch(message);
      }
    };
    refuse(() => planScale(t, 'db', 2), /no pods named db-<number>/);
    refuse(() => planScale(t, 'Web', 2), /not a pod group name/);
    refuse(() => planScale(t, 'web', -1), /whole number/);
    refuse(() => planScale(t, 'web', MAX_REPLICAS + 1), /at most/);
    const long = nodeport();
    long.pods.forEach((p, i) => (p.name = `backends-${i + 1}`));
    refuse(() => planScale(long, 'backends', 10), /veth-backends-10 would exceed 15/);
    const full = nodeport();
    full.nodes = full.nodes.map((n) => ({ ...n, podCIDR: n.podCIDR.replace('/24', '/30') }));
    full.pods = [];
    refuse(() => planScale(full, 'web', 5, { template: { labels: { app: 'web' }, workload: 'http' } }), /no free address/);
  });

  it('counts every group against the lab\'s 1024-pod limit (issue 16)', () => {
    const crowded = nodeport();
    const db = crowded.pods[0]!;
    crowded.pods.push(...Array.from({ length: 1000 }, (_, i) => ({ ...db, name: `db-${i + 1}`, labels: { app: 'db' }, address: `10.99.${i >> 8}.${i & 255}` })));
    expect(() => planScale(crowded, 'web', 30)).toThrow(/would make 1030 pods .* at most 1024 in all/);
    expect(planScale(crowded, 'web', 24).add).toHaveLength(22);
  });
});

describe('pod changes as the lab records them', () => {
  it('applyPodChanges of the recorded changes gives the same topology as the scale itself', () => {
    const file = nodeport();
    const plan = planScale(file, 'web', 4);
    const changes = recordScale(emptyChanges(), plan);
    expect(applyPodChanges(file, changes)).toEqual(withScale(file, plan));
    const down = planScale(withScale(file, plan), 'web', 1);
    const changes2 = recordScale(changes, down);
    expect(changes2.added).toEqual([]);
    expect(changes2.removed).toEqual(['web-2']);
    expect(applyPodChanges(file, changes2).pods.map((p) => p.name)).toEqual(['web-1']);
  });

  it('readiness set at run time overrides the file, and a not-ready pod leaves the endpoints', () => {
    const file = nodeport();
    const killed = applyPodChanges(file, recordReadiness(emptyChanges(), 'web-2', false));
    expect(killed.pods.find((p) => p.name === 'web-2')!.ready).toBe(false);
    const before = endpointsView(file);
    const after = endpointsView(killed);
    expect(after[0]!.endpoints.map((e) => e.pod)).toEqual(['web-1']);
    expect(endpointsDiff(before, after)).toEqual([{ service: `${SPN}/tcp`, added: [], removed: ['10.244.1.2:8443'] }]);
    // the file itself is not modified
    expect(file.pods.every((p) => p.ready)).toBe(true);
  });
});

describe('planPods: the sub-plan that adds pods to a running lab', () => {
  it('is cut from the whole plan: the same lines up would run for these pods, nothing else', () => {
    const t = withScale(nodeport(), planScale(nodeport(), 'web', 3));
    const full = planLab(t);
    const sub = planPods(t, ['web-3']);
    expect(sub.createBatch).toEqual(['netns add nodeport-web-3', `link add name eth0 index 100 netns nodeport-web-3 type veth peer name veth-web-3 index ${0x1000000 + 0xf40002} netns nodeport-node1`]);
    expect(sub.createBatch.every((l) => full.createBatch.includes(l))).toBe(true);
    const pod = sub.namespaces.find((n) => n.host === 'web-3')!;
    expect(pod).toEqual(full.namespaces.find((n) => n.host === 'web-3'));
    expect(pod.batch).toContain('addr add 10.244.0.2/24 dev eth0');
    const node = sub.namespaces.find((n) => n.host === 'node1')!;
    expect(node.batch).toEqual(['link set veth-web-3 master cbr0', 'link set veth-web-3 type bridge_slave hairpin on', 'link set veth-web-3 up']);
    expect(node.sysctls).toEqual({});
    expect(sub.namespaces.map((n) => n.host).sort()).toEqual(['node1', 'web-3']);
    expect(sub.workloads.map((w) => [w.pod, w.ip, w.ports])).toEqual([['web-3', '10.244.0.2', [8443]]]);
    expect(sub.kubeProxy).toEqual([]);
    expect(sub.files).toEqual([]);
  });

  it('carries each new pod\'s resolv.conf when the cluster has DNS', () => {
    const base = structuredClone(loadTopology('clusterip').topology);
    const t = withScale(base, planScale(base, 'web', 3));
    const sub = planPods(t, ['web-3']);
    expect(sub.files.map((f) => f.path)).toEqual([expect.stringMatching(/\/clusterip-web-3\/resolv\.conf$/)]);
  });
});

describe('planResync: the payload kube-proxy would apply after the change', () => {
  const existingOf = (t: Topology, node: string) => kubeProxyRules(t, node).nat.chains.concat(['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']);

  it('scale up: declares the new KUBE-SEP, deletes nothing', () => {
    const before = nodeport();
    const after = withScale(before, planScale(before, 'web', 3));
    const r = planResync(existingOf(before, 'node1'), kubeProxyRules(after, 'node1'));
    expect(r.added).toEqual([sep('10.244.0.2:8443')]);
    expect(r.removed).toEqual([]);
    expect(r.payload).not.toMatch(/^-X /m);
    // built-in chains are not declared (that would flush them), kube-proxy's are
    expect(r.payload).not.toMatch(/^:PREROUTING/m);
    expect(r.payload).toMatch(/^:KUBE-SERVICES - \[0:0\]$/m);
    expect(r.payload).not.toMatch(/-A PREROUTING/);
  });

  it('a killed endpoint: its KUBE-SEP is declared (flushed) and then deleted with -X, after every rule', () => {
    const before = nodeport();
    const after = applyPodChanges(before, recordReadiness(emptyChanges(), 'web-2', false));
    const r = planResync(existingOf(before, 'node1'), kubeProxyRules(after, 'node1'));
    expect(r.removed).toEqual([sep('10.244.1.2:8443')]);
    const lines = r.payload.trimEnd().split('\n');
    const nat = lines.slice(lines.indexOf('*nat'));
    const x = nat.indexOf(`-X ${sep('10.244.1.2:8443')}`);
    expect(x).toBeGreaterThan(nat.indexOf(`:${sep('10.244.1.2:8443')} - [0:0]`));
    expect(nat.slice(x + 1)).toEqual(['COMMIT']);
    // nothing jumps to it any more
    expect(parseSave(r.payload).rules.some((rule) => rule.options.get('-j') === sep('10.244.1.2:8443'))).toBe(false);
  });

  it('externalTrafficPolicy Local: a node losing its last local endpoint loses KUBE-SVL too', () => {
    const before = structuredClone(loadTopology('nodeport-local').topology);
    const after = applyPodChanges(before, recordReadiness(emptyChanges(), 'web-2', false));
    const r = planResync(existingOf(before, 'node2'), kubeProxyRules(after, 'node2'));
    expect(r.removed.sort()).toEqual([sep('10.244.1.2:8443'), serviceLocalChain(SPN, 'tcp')].sort());
    expect(r.payload).toMatch(/has no local endpoints.*-j DROP/);
  });

  it('leaves chains that are not kube-proxy\'s per-service chains alone', () => {
    const t = nodeport();
    const r = planResync([...existingOf(t, 'node1'), 'MY-CHAIN', 'KUBE-MARK-DROP'], kubeProxyRules(t, 'node1'));
    expect(r.removed).toEqual([]);
    expect(r.added).toEqual([]);
    expect(r.payload).toContain(`:${serviceChain(SPN, 'tcp')} - [0:0]`);
  });
});
