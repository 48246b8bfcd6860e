import { describe, expect, it } from 'vitest';
import { nftNameBase } from '../../lab/plan/kube-proxy/hash.js';
import { nftablesRules, planNftSync, renderNftAdds, type NftRuleset } from '../../lab/plan/kube-proxy/nftables.js';
import { planProxySync } from '../../lab/plan/kube-proxy/sync.js';
import { planLab } from '../../lab/plan/plan.js';
import { InputError } from '../../lab/errors.js';
import { loadTopology } from '../../lab/topology/load.js';

/** kube-proxy's nftables mode as the lab writes it for its own scenarios (upstream's own cases: upstream-oracle.test.ts). */

const NFT = { 'kubeProxy.mode': 'nftables' };
const load = (name: string, set: Record<string, string> = {}) => loadTopology(name, { ...NFT, ...set }).topology;
const rulesOf = (r: NftRuleset, chain: string) => r.rules.filter((x) => x.chain === chain).map((x) => x.rule);
const elements = (r: NftRuleset, container: string) => r.elements.filter((e) => e.container === container).map((e) => `${e.key}${e.value ? ` : ${e.value}` : ''}`);

const SVC = `service-${nftNameBase('default/web/tcp/https')}`;
const LOCAL = `local-${nftNameBase('default/web/tcp/https')}`;
const EXT = `external-${nftNameBase('default/web/tcp/https')}`;
const EP1 = `endpoint-${nftNameBase('default/web/tcp/https__10.244.0.3/8443')}`;
const EP2 = `endpoint-${nftNameBase('default/web/tcp/https__10.244.1.2/8443')}`;

describe('names', () => {
  it('hash the text after the hash, as upstream: ns1/svc1/tcp/p80 -> ULMVA6XW', () => {
    expect(nftNameBase('ns1/svc1/tcp/p80')).toBe('ULMVA6XW-ns1/svc1/tcp/p80');
    expect(SVC).toBe('service-PET3V2EF-default/web/tcp/https');
  });
});

describe('nodeport in nftables mode', () => {
  const t = load('nodeport');
  const r = nftablesRules(t, 'node1');

  it('dispatches the ClusterIP and the NodePort through the maps, NodePorts on the node IP only', () => {
    expect(elements(r, 'service-ips')).toEqual([`172.31.0.5 . tcp . 443 : goto ${SVC}`]);
    expect(elements(r, 'service-nodeports')).toEqual([`tcp . 32000 : goto ${EXT}`]);
    expect(elements(r, 'nodeport-ips')).toEqual(['10.240.0.4']);
    expect(elements(r, 'cluster-ips')).toEqual(['172.31.0.5']);
    expect(rulesOf(r, 'cluster-ips-check')).toContain('ip daddr { 172.31.0.0/16 } drop');
  });

  it('masquerades external traffic, picks an endpoint with numgen, DNATs in the endpoint chain', () => {
    expect(rulesOf(r, EXT)).toEqual(['jump mark-for-masquerade', `goto ${SVC}`]);
    expect(rulesOf(r, SVC)).toEqual([
      'ip daddr 172.31.0.5 ip saddr != 10.244.0.0/16 jump mark-for-masquerade',
      `numgen random mod 2 vmap { 0 : goto ${EP1} , 1 : goto ${EP2} }`,
    ]);
    expect(rulesOf(r, EP2)).toEqual(['ip saddr 10.244.1.2 jump mark-for-masquerade', 'meta l4proto tcp dnat to 10.244.1.2:8443']);
  });

  it('plans an nft payload for up, and no route_localnet (no localhost NodePorts in nftables mode)', () => {
    const plan = planLab(t);
    expect(plan.kubeProxy.map((k) => [k.node, k.mode])).toEqual([['node1', 'nftables'], ['node2', 'nftables']]);
    expect(plan.kubeProxy[0]!.payload).toMatch(/^add table ip kube-proxy/);
    for (const n of plan.namespaces.filter((x) => x.role === 'node')) expect(n.sysctls['net.ipv4.conf.all.route_localnet']).toBeUndefined();
    const ipt = planLab(loadTopology('nodeport').topology);
    expect(ipt.kubeProxy[0]!.payload).toMatch(/^\*mangle/);
    for (const n of ipt.namespaces.filter((x) => x.role === 'node')) expect(n.sysctls['net.ipv4.conf.all.route_localnet']).toBe('1');
  });
});

describe('policies in nftables mode', () => {
  it('externalTrafficPolicy Local: short-circuits, then the local chain; a node without a local pod drops', () => {
    const t = load('nodeport-local');
    const n1 = nftablesRules(t, 'node1');
    expect(rulesOf(n1, EXT)).toEqual([
      `ip saddr 10.244.0.0/16 goto ${SVC}`,
      'fib saddr type local jump mark-for-masquerade',
      `fib saddr type local goto ${SVC}`,
      `goto ${LOCAL}`,
    ]);
    expect(rulesOf(n1, LOCAL)).toEqual([`numgen random mod 1 vmap { 0 : goto ${EP1} }`]);
    const unready = nftablesRules(load('nodeport-local', { 'pods.web-2.ready': 'false' }), 'node2');
    expect(unready.chains.map((c) => c.name)).not.toContain(LOCAL);
    expect(elements(unready, 'no-endpoint-nodeports')).toEqual(['tcp . 32000 : drop']);
    expect(unready.elements.find((e) => e.container === 'no-endpoint-nodeports')?.comment).toBe('default/web:https');
  });

  it('internalTrafficPolicy Local without a local pod: the ClusterIP drops; no endpoints at all: reject', () => {
    const itp = nftablesRules(load('internal-local', { 'pods.web-2.ready': 'false' }), 'node2');
    expect(elements(itp, 'no-endpoint-services')).toEqual(['172.31.0.5 . tcp . 443 : drop']);
    const none = nftablesRules(load('nodeport', { 'pods.web-1.ready': 'false', 'pods.web-2.ready': 'false' }), 'node1');
    expect(elements(none, 'no-endpoint-services')).toEqual(['172.31.0.5 . tcp . 443 : goto reject-chain']);
    expect(elements(none, 'no-endpoint-nodeports')).toEqual(['tcp . 32000 : goto reject-chain']);
    expect(none.chains.filter((c) => c.name.includes('/'))).toEqual([]);
  });

  it('sessionAffinity: one affinity set per endpoint with the timeout, checked before numgen', () => {
    const r = nftablesRules(load('affinity', { 'services.web.sessionAffinityTimeoutSeconds': '60' }), 'node1');
    const sets = r.containers.filter((c) => c.name.startsWith('affinity-'));
    expect(sets.map((s) => [s.flags, s.timeout])).toEqual([['dynamic,timeout', 60], ['dynamic,timeout', 60]]);
    expect(rulesOf(r, SVC)[1]).toMatch(/^ip saddr @affinity-\S+ goto endpoint-/);
    expect(renderNftAdds(r).find((l) => l.startsWith('add set ip kube-proxy affinity-'))).toContain('timeout 60s');
  });
});

describe('resync: one nft transaction', () => {
  const before = load('nodeport');
  const after = load('nodeport', { 'pods.web-2.ready': 'false' });

  it('flushes and rewrites every chain and map, deletes the stale endpoint chain at the end', () => {
    const existing = { chains: nftablesRules(before, 'node1').chains.map((c) => c.name), sets: [] };
    const plan = planNftSync(existing, nftablesRules(after, 'node1'));
    expect(plan.removed).toEqual([EP2]);
    expect(plan.added).toEqual([]);
    const lines = plan.payload.trimEnd().split('\n');
    expect(lines[0]).toBe('add table ip kube-proxy { comment "rules for kube-proxy" ; }');
    expect(lines).toContain('flush map ip kube-proxy service-ips');
    expect(lines).toContain(`flush chain ip kube-proxy ${SVC}`);
    expect(lines.indexOf(`flush chain ip kube-proxy ${EP2}`)).toBeLessThan(lines.indexOf(`delete chain ip kube-proxy ${EP2}`));
    expect(lines.at(-1)).toBe(`delete chain ip kube-proxy ${EP2}`);
  });

  it('keeps affinity sets (clients stay stuck) but deletes those of gone endpoints', () => {
    const aff = load('affinity');
    const r = nftablesRules(aff, 'node1');
    const sets = r.containers.filter((c) => c.name.startsWith('affinity-')).map((c) => c.name);
    const plan = planNftSync({ chains: [], sets: [...sets, 'affinity-GONE-x/y/tcp/p__1.2.3.4/80'] }, r);
    for (const s of sets) expect(plan.payload).not.toContain(`flush set ip kube-proxy ${s}`);
    expect(plan.payload).toContain('delete set ip kube-proxy affinity-GONE-x/y/tcp/p__1.2.3.4/80');
  });

  it('the one seam picks the mode from the topology', () => {
    expect(planProxySync(before, 'node1', 'fresh').mode).toBe('nftables');
    expect(planProxySync(loadTopology('nodeport').topology, 'node1', 'fresh').payload).toMatch(/^\*mangle/);
  });
});

describe('topology checks for the Service features', () => {
  const problems = (set: Record<string, string>) => {
    try {
      loadTopology('nodeport', set);
      return [];
    } catch (e) {
      return (e as InputError).problems.map((p) => `${p.field}: ${p.message}`);
    }
  };
  it('refuses a bad proxy mode, source ranges on a NodePort, a health check port without Local', () => {
    expect(problems({ 'kubeProxy.mode': 'ipvs' })[0]).toMatch(/^kubeProxy\.mode/);
    expect(problems({ 'services.web.loadBalancerSourceRanges': '[10.241.0.0/24]' }).length).toBeGreaterThan(0);
    expect(problems({ 'services.web.healthCheckNodePort': '32100' })[0]).toMatch(/only a LoadBalancer service has a health check node port/);
  });
});
