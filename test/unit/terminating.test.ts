import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { categorizeEndpoints, endpointConditions, servicePorts } from '../../lab/plan/endpoints.js';
import { endpointChain, serviceChain, serviceLocalChain } from '../../lab/plan/kube-proxy/hash.js';
import { kubeProxyRules } from '../../lab/plan/kube-proxy/iptables.js';
import { nftablesRules, nftEndpointNames, nftServiceNames } from '../../lab/plan/kube-proxy/nftables.js';
import { applyPodChanges, emptyChanges, endpointsView, recordReadiness } from '../../lab/plan/scale.js';
import { loadTopology } from '../../lab/topology/load.js';
import { topologySchema, type Topology, type TopologyInput } from '../../lab/topology/schema.js';
import { traceIptables, traceNftables } from './packet-flow.js';

/**
 * Terminating endpoints: kube-proxy's CategorizeEndpoints fallback, checked against the cases and
 * expected packet flows of upstream's own tests (test/fixtures/upstream/terminating-endpoints.yaml),
 * in both proxy modes, and the rules it leads to on the lab's scenarios.
 */
const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'upstream', 'terminating-endpoints.yaml');

interface UpstreamEndpoint { ip: string; node: string; ready: boolean; serving: boolean; terminating: boolean }
interface UpstreamFlow { name: string; from: 'pod' | 'external'; to: string; output: string; masq?: boolean }
interface UpstreamCase { policy: 'Local' | 'Cluster'; name: string; endpoints: UpstreamEndpoint[]; flows: UpstreamFlow[] }
const upstream = parse(readFileSync(FIXTURE, 'utf8')) as {
  service: NonNullable<TopologyInput['services']>[number];
  testNode: string;
  podSource: string;
  externalSource: string;
  cases: UpstreamCase[];
};

/** An upstream EndpointSlice entry as a lab pod: the readiness probe is `serving`, deletion is `terminating`. */
function worldOf(c: UpstreamCase): Topology {
  const nodes = [...new Set([upstream.testNode, ...c.endpoints.map((e) => e.node)])];
  return topologySchema.parse({
    lab: 'upstream',
    cluster: { podCIDR: '10.0.0.0/8', serviceCIDR: '172.30.0.0/16' },
    networks: [{ name: 'nodes', subnet: '192.168.0.0/24' }],
    nodes: nodes.map((n, i) => ({ name: n, network: 'nodes', address: `192.168.0.${i + 2}`, podCIDR: `10.0.${i + 1}.0/24` })),
    pods: c.endpoints.map((e, i) => ({ name: `ep-${i}`, node: e.node, address: e.ip, labels: { app: 'svc1' }, ready: e.serving, terminating: e.terminating })),
    services: [{ ...upstream.service, selector: { app: 'svc1' }, externalTrafficPolicy: c.policy }],
  } satisfies TopologyInput);
}

describe('terminating endpoints against upstream (TestTerminatingEndpointsTrafficPolicyLocal/Cluster)', () => {
  for (const c of upstream.cases) {
    const t = worldOf(c);
    it(`${c.policy}, ${c.name}: each pod's EndpointSlice conditions are upstream's`, () => {
      t.pods.forEach((p, i) => {
        const { ready, serving, terminating } = c.endpoints[i]!;
        expect(endpointConditions(p)).toEqual({ ready, serving, terminating });
      });
    });
    for (const f of c.flows) {
      const src = f.from === 'pod' ? upstream.podSource : upstream.externalSource;
      const [ip, port] = f.to.split(':') as [string, string];
      it(`${c.policy}, ${c.name}, ${f.name}: iptables mode gives ${f.output}`, () => {
        const got = traceIptables(kubeProxyRules(t, upstream.testNode), src, ip, Number(port));
        expect(got.output).toBe(f.output);
        if (f.masq !== undefined) expect(got.masq).toBe(f.masq);
      });
      it(`${c.policy}, ${c.name}, ${f.name}: nftables mode gives ${f.output}`, () => {
        const got = traceNftables(nftablesRules(t, upstream.testNode), src, ip, Number(port));
        expect(got.output).toBe(f.output);
        if (f.masq !== undefined) expect(got.masq).toBe(f.masq);
      });
    }
  }

  it('the tracer notices a wrong answer: with the fallback switched off the terminating-only cases change', () => {
    const c = upstream.cases.find((x) => x.policy === 'Cluster' && x.name === 'only terminating endpoints exist')!;
    const t = worldOf(c);
    const noFallback: Topology = { ...t, pods: t.pods.map((p) => ({ ...p, ready: p.ready && !p.terminating })) };
    expect(traceIptables(kubeProxyRules(noFallback, upstream.testNode), upstream.podSource, '172.30.1.1', 80).output).toBe('REJECT');
    expect(traceNftables(nftablesRules(noFallback, upstream.testNode), upstream.podSource, '172.30.1.1', 80).output).toBe('REJECT');
  });
});

describe('CategorizeEndpoints', () => {
  const load = (name: string, set: Record<string, string> = {}) => loadTopology(name, set).topology;

  it('a terminating pod is left out while a ready one is left, for Cluster policy', () => {
    const t = load('nodeport', { 'pods.web-2.terminating': 'true' });
    const [sp] = servicePorts(t);
    expect(sp!.endpoints.map((e) => e.pod)).toEqual(['web-1']);
    expect(sp!.terminating.map((e) => e.pod)).toEqual(['web-2']);
    for (const node of ['node1', 'node2']) {
      const c = categorizeEndpoints(sp!, node);
      expect(c.cluster.map((e) => e.pod)).toEqual(['web-1']);
      expect(c.reachable.map((e) => e.pod)).toEqual(['web-1']);
    }
  });

  it('Local policy falls back on its own node only, and reachable is the union of both sets', () => {
    const t = load('nodeport-local', { 'pods.web-2.terminating': 'true' });
    const [sp] = servicePorts(t);
    const n2 = categorizeEndpoints(sp!, 'node2');
    expect(n2.local.map((e) => e.pod)).toEqual(['web-2']);
    expect(n2.cluster.map((e) => e.pod)).toEqual(['web-1']);
    expect(n2.reachable.map((e) => e.pod)).toEqual(['web-1', 'web-2']);
    const n1 = categorizeEndpoints(sp!, 'node1');
    expect(n1.local.map((e) => e.pod)).toEqual(['web-1']);
    expect(n1.reachable.map((e) => e.pod)).toEqual(['web-1']);
  });

  it('a pod that is terminating and not serving is used by no policy', () => {
    const t = load('nodeport', { 'pods.web-1.terminating': 'true', 'pods.web-1.ready': 'false', 'pods.web-2.ready': 'false' });
    const [sp] = servicePorts(t);
    expect(categorizeEndpoints(sp!, 'node1')).toMatchObject({ cluster: [], local: [], reachable: [], hasAny: false });
  });
});

describe('rules with terminating endpoints', () => {
  const load = (name: string, set: Record<string, string> = {}) => loadTopology(name, set).topology;
  const SPN = 'default/web:https';
  const SEP1 = endpointChain(SPN, 'tcp', '10.244.0.3:8443');
  const SEP2 = endpointChain(SPN, 'tcp', '10.244.1.2:8443');

  it('iptables, one of two terminating: no KUBE-SEP chain for it on any node', () => {
    const t = load('nodeport', { 'pods.web-2.terminating': 'true' });
    for (const node of ['node1', 'node2']) {
      const r = kubeProxyRules(t, node);
      expect(r.nat.chains).toContain(SEP1);
      expect(r.nat.chains).not.toContain(SEP2);
      expect(r.nat.rules.filter((x) => x.chain === serviceChain(SPN, 'tcp')).map((x) => x.args.at(-1))).toEqual(['KUBE-MARK-MASQ', SEP1]);
    }
  });

  it('iptables, every pod terminating: KUBE-SVC lists them all, no REJECT', () => {
    const t = load('nodeport', { 'pods.web-1.terminating': 'true', 'pods.web-2.terminating': 'true' });
    const r = kubeProxyRules(t, 'node1');
    expect(r.nat.rules.filter((x) => x.chain === serviceChain(SPN, 'tcp')).map((x) => x.args.at(-1))).toEqual(['KUBE-MARK-MASQ', SEP1, SEP2]);
    expect(r.filter.rules.some((x) => x.args.includes('REJECT'))).toBe(false);
  });

  it('iptables, nodeport-local with web-2 terminating: node2 has KUBE-SVL -> web-2 and KUBE-SVC -> web-1 only', () => {
    const t = load('nodeport-local', { 'pods.web-2.terminating': 'true' });
    const r = kubeProxyRules(t, 'node2');
    expect(r.nat.rules.filter((x) => x.chain === serviceLocalChain(SPN, 'tcp')).map((x) => x.args.at(-1))).toEqual([SEP2]);
    expect(r.nat.rules.filter((x) => x.chain === serviceChain(SPN, 'tcp')).map((x) => x.args.at(-1))).toEqual(['KUBE-MARK-MASQ', SEP1]);
    expect(r.nat.chains).toEqual(expect.arrayContaining([SEP1, SEP2]));
    expect(r.filter.rules.filter((x) => x.chain === 'KUBE-EXTERNAL-SERVICES')).toEqual([]);
  });

  it('nftables, nodeport-local with web-2 terminating: node2 local- chain picks web-2, service- chain web-1', () => {
    const t = load('nodeport-local', { 'pods.web-2.terminating': 'true', 'kubeProxy.mode': 'nftables' });
    const r = nftablesRules(t, 'node2');
    const [sp] = servicePorts(t);
    const names = nftServiceNames(sp!);
    const ep = (ip: string) => nftEndpointNames(names.key, { ip, port: 8443 }).chain;
    expect(r.rules.filter((x) => x.chain === names.local).map((x) => x.rule)).toEqual([`numgen random mod 1 vmap { 0 : goto ${ep('10.244.1.2')} }`]);
    expect(r.rules.filter((x) => x.chain === names.service).at(-1)!.rule).toBe(`numgen random mod 1 vmap { 0 : goto ${ep('10.244.0.3')} }`);
    expect(r.chains.map((c) => c.name)).toEqual(expect.arrayContaining([ep('10.244.0.3'), ep('10.244.1.2')]));
    expect(r.elements.filter((e) => e.container === 'no-endpoint-nodeports')).toEqual([]);
  });
});

describe('lab kill --terminating, as recorded state', () => {
  it('marks the pod terminating, keeps its readiness probe, and revive clears both', () => {
    const t = loadTopology('nodeport', {}).topology;
    const killed = applyPodChanges(t, recordReadiness(emptyChanges(), 'web-2', true, true));
    const view = endpointsView(killed)[0]!;
    expect(view.endpoints.map((e) => e.pod)).toEqual(['web-1']);
    expect(view.terminating).toEqual([{ pod: 'web-2', node: 'node2', address: '10.244.1.2:8443', conditions: { ready: false, serving: true, terminating: true } }]);
    const revived = applyPodChanges(t, recordReadiness(recordReadiness(emptyChanges(), 'web-2', true, true), 'web-2', true, false));
    expect(endpointsView(revived)[0]!.endpoints.map((e) => e.pod)).toEqual(['web-1', 'web-2']);
  });
});

describe('the health check node port with a terminating pod (TestHealthCheckNodePortWhenTerminating)', () => {
  it('counts ready local endpoints only: a node whose only pod terminates answers as having none', async () => {
    const { localReadyEndpoints } = await import('../../lab/plan/kube-proxy/health.js');
    const t = loadTopology('loadbalancer-local', { 'pods.web-2.terminating': 'true' }).topology;
    const svc = t.services.find((s) => s.healthCheckNodePort)!;
    expect(localReadyEndpoints(t, svc, 'node1')).toBe(1);
    expect(localReadyEndpoints(t, svc, 'node2')).toBe(0);
  });
});
