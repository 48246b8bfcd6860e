import { describe, expect, it } from 'vitest';
import { endpointChain, externalChain, serviceChain, serviceLocalChain } from '../../lab/plan/kube-proxy/hash.js';
import { initialRestore, kubeProxyRules } from '../../lab/plan/kube-proxy/iptables.js';
import { parseSave, type ParsedRule } from '../../lab/plan/kube-proxy/rules.js';
import { planLab } from '../../lab/plan/plan.js';
import { loadTopology } from '../../lab/topology/load.js';
import type { Topology } from '../../lab/topology/schema.js';
import { loadWalkthrough } from '../../lab/verify/walkthrough.js';

/** The traffic-policy scenarios: their rules, read back through the iptables-save parser. */

const SPN = 'default/web:https';
const SVC = serviceChain(SPN, 'tcp');
const SVL = serviceLocalChain(SPN, 'tcp');
const EXT = externalChain(SPN, 'tcp');
const SEP1 = endpointChain(SPN, 'tcp', '10.244.0.3:8443');
const SEP2 = endpointChain(SPN, 'tcp', '10.244.1.2:8443');

function rules(t: Topology, node: string) {
  const { chains, rules } = parseSave(initialRestore(kubeProxyRules(t, node)));
  const chain = (table: string, name: string) => rules.filter((r) => r.table === table && r.chain === name);
  return { natChains: chains.get('nat') ?? [], nat: (c: string) => chain('nat', c), filter: (c: string) => chain('filter', c), all: rules };
}
const target = (r?: ParsedRule) => r?.options.get('-j');
const comment = (r?: ParsedRule) => r?.options.get('--comment');
const load = (name: string, set: Record<string, string> = {}) => loadTopology(name, set);

/** Every jump lands on a chain the payload declares (iptables-restore refuses the payload otherwise). */
function expectJumpsDeclared(t: Topology, node: string): void {
  const { chains, rules: all } = parseSave(initialRestore(kubeProxyRules(t, node)));
  const builtin = new Set(['ACCEPT', 'DROP', 'RETURN', 'REJECT', 'DNAT', 'MARK', 'MASQUERADE']);
  for (const r of all) {
    const j = target(r)!;
    if (!builtin.has(j)) expect(chains.get(r.table), `${node}: ${r.text}`).toContain(j);
  }
}

describe('scenario files', () => {
  for (const name of ['nodeport-local', 'internal-local', 'affinity']) {
    it(`${name}: the topology and its walkthrough load and check`, () => {
      const { topology, path } = load(name);
      expect(topology.lab).toBe(name);
      expect(() => loadWalkthrough(topology, path)).not.toThrow();
    });
  }

  it('each unready variant walkthrough checks against the topology with web-2 not ready', () => {
    for (const [name, walkthrough] of [
      ['nodeport-local', 'nodeport-local-unready.walkthrough.yaml'],
      ['internal-local', 'internal-local-unready.walkthrough.yaml'],
    ] as const) {
      const { topology, path } = load(name, { 'pods.web-2.ready': 'false', walkthrough });
      expect(topology.walkthrough).toBe(walkthrough);
      expect(topology.pods.find((p) => p.name === 'web-2')!.ready).toBe(false);
      expect(() => loadWalkthrough(topology, path)).not.toThrow();
    }
  });

  it('nodeport-local is nodeport with one field changed, as --set would do it', () => {
    const file = load('nodeport-local').topology;
    const set = load('nodeport', { 'services.web.externalTrafficPolicy': 'Local', lab: 'nodeport-local', walkthrough: 'nodeport-local.walkthrough.yaml' }).topology;
    expect({ ...file, description: '' }).toEqual({ ...set, description: '' });
  });
});

describe('externalTrafficPolicy: Local (nodeport-local)', () => {
  const t = load('nodeport-local').topology;

  it('each node sends outside traffic only to its own endpoint, with no masquerade mark', () => {
    for (const [node, sep] of [['node1', SEP1], ['node2', SEP2]] as const) {
      const r = rules(t, node);
      const ext = r.nat(EXT);
      expect(ext.map(target)).toEqual([SVC, 'KUBE-MARK-MASQ', SVC, SVL]);
      // the only masquerade in KUBE-EXT is for traffic the node itself originates
      expect(ext.filter((x) => target(x) === 'KUBE-MARK-MASQ').every((x) => x.options.get('--src-type') === 'LOCAL')).toBe(true);
      expect(r.nat(SVL).map(target)).toEqual([sep]);
      expect(r.filter('KUBE-EXTERNAL-SERVICES')).toEqual([]);
      expectJumpsDeclared(t, node);
    }
  });

  it('a node without a ready local endpoint has no KUBE-SVL at all, and drops its NodePort in filter', () => {
    const unready = load('nodeport-local', { 'pods.web-2.ready': 'false' }).topology;
    const r = rules(unready, 'node2');
    expect(r.natChains).not.toContain(SVL);
    expect(r.nat(EXT).map(target)).toEqual([SVC, 'KUBE-MARK-MASQ', SVC]);
    const drop = r.filter('KUBE-EXTERNAL-SERVICES');
    expect(drop.map((x) => [comment(x), x.options.get('--dport'), target(x)])).toEqual([[`${SPN} has no local endpoints`, '32000', 'DROP']]);
    // Only web-1 is an endpoint anywhere now: node2's KUBE-SVC (for pod and node traffic) lists it alone.
    expect(r.nat(SVC).slice(1).map(target)).toEqual([SEP1]);
    expect(r.natChains).not.toContain(SEP2);
    expectJumpsDeclared(unready, 'node2');
    // node1 is unaffected: it keeps its local endpoint.
    expect(rules(unready, 'node1').nat(SVL).map(target)).toEqual([SEP1]);
  });
});

describe('internalTrafficPolicy: Local (internal-local)', () => {
  const t = load('internal-local').topology;

  it('the ClusterIP jumps to KUBE-SVL, which lists only the node\'s own endpoint', () => {
    for (const [node, sep] of [['node1', SEP1], ['node2', SEP2]] as const) {
      const r = rules(t, node);
      const clusterIP = r.nat('KUBE-SERVICES').find((x) => x.options.get('-d') === '172.31.0.5');
      expect(target(clusterIP)).toBe(SVL);
      expect(r.nat(SVL).map(target)).toEqual(['KUBE-MARK-MASQ', sep]);
      // The NodePort still follows externalTrafficPolicy: Cluster - both endpoints.
      expect(r.nat(EXT).map(target)).toEqual(['KUBE-MARK-MASQ', SVC]);
      expect(r.nat(SVC).map(target)).toEqual([SEP1, SEP2]);
      expectJumpsDeclared(t, node);
    }
  });

  it('a node with no ready local endpoint drops ClusterIP traffic in filter and has no KUBE-SVL', () => {
    const unready = load('internal-local', { 'pods.web-2.ready': 'false' }).topology;
    const r = rules(unready, 'node2');
    expect(r.natChains).not.toContain(SVL);
    expect(r.nat('KUBE-SERVICES').map(target)).toEqual(['KUBE-NODEPORTS']);
    expect(r.filter('KUBE-SERVICES').map((x) => [comment(x), x.options.get('-d'), target(x)])).toEqual([[`${SPN} has no local endpoints`, '172.31.0.5', 'DROP']]);
    expectJumpsDeclared(unready, 'node2');
  });

  it('as a ClusterIP service, a node declares endpoint chains only for its own endpoints', () => {
    const cip = structuredClone(t);
    cip.services[0]!.type = 'ClusterIP';
    delete cip.services[0]!.ports[0]!.nodePort;
    const r = rules(cip, 'node1');
    expect(r.natChains.filter((c) => c.startsWith('KUBE-SEP-'))).toEqual([SEP1]);
    expect(r.natChains).not.toContain(SVC);
    expectJumpsDeclared(cip, 'node1');
  });
});

describe('sessionAffinity: ClientIP (affinity)', () => {
  const t = load('affinity').topology;

  it('KUBE-SVC checks each endpoint\'s recent list first, then rolls the statistic', () => {
    const r = rules(t, 'node1');
    const svc = r.nat(SVC);
    expect(svc.map(target)).toEqual(['KUBE-MARK-MASQ', SEP1, SEP2, SEP1, SEP2]);
    for (const [i, sep] of [[1, SEP1], [2, SEP2]] as const) {
      expect(svc[i]!.modules).toContain('recent');
      expect(svc[i]!.options.get('--name')).toBe(sep);
      expect(svc[i]!.options.has('--rcheck')).toBe(true);
      expect(svc[i]!.options.get('--seconds')).toBe('10800');
    }
    expect(svc[3]!.options.get('--probability')).toBe('0.5000000000');
  });

  it('each KUBE-SEP adds the client to its own recent list as it DNATs', () => {
    const r = rules(t, 'node2');
    for (const [sep, to] of [[SEP1, '10.244.0.3:8443'], [SEP2, '10.244.1.2:8443']] as const) {
      const dnat = r.nat(sep).find((x) => target(x) === 'DNAT')!;
      expect(dnat.options.get('--name')).toBe(sep);
      expect(dnat.options.has('--set')).toBe(true);
      expect(dnat.options.get('--to-destination')).toBe(to);
    }
  });

  it('the rules are the same on both nodes (affinity lists are per node, kept by each node\'s kernel)', () => {
    expect(rules(t, 'node1').all.filter((x) => x.table === 'nat').map((x) => x.text)).toEqual(rules(t, 'node2').all.filter((x) => x.table === 'nat').map((x) => x.text));
  });
});

it('planLab builds every variant with one payload per node and a workload per web pod', () => {
  for (const name of ['nodeport-local', 'internal-local', 'affinity']) {
    const p = planLab(load(name).topology);
    expect(p.kubeProxy.map((x) => x.node)).toEqual(['node1', 'node2']);
    expect(p.workloads.map((w) => w.pod).sort()).toEqual(['web-1', 'web-2']);
  }
});
