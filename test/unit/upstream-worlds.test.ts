import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kubeProxyRules, resyncRestore } from '../../lab/plan/kube-proxy/iptables.js';
import { nftablesRules, renderNftAdds } from '../../lab/plan/kube-proxy/nftables.js';
import { loadTopology } from '../../lab/topology/load.js';
import { deriveWalkthrough } from '../../lab/verify/derive/index.js';
import { problemsOf } from './helpers.js';

/**
 * Upstream's own test worlds written as topology files (test/fixtures/upstream-worlds/): they
 * load as they are, and give the rules upstream's tests expect of them, in both modes (chain
 * names are upstream's hashes of the same service ports and endpoints).
 */
const world = (name: string, set: Record<string, string> = {}) => loadTopology(join(import.meta.dirname, '..', 'fixtures', 'upstream-worlds', `${name}.yaml`), set).topology;
const ipt = (name: string, set: Record<string, string> = {}, node = 'test-node') => resyncRestore(kubeProxyRules(world(name, set), node)).split('\n');
const nft = (name: string, set: Record<string, string> = {}, node = 'test-node') => renderNftAdds(nftablesRules(world(name, { ...set, 'kubeProxy.mode': 'nftables' }), node));

describe('TestNodePorts, as a topology file', () => {
  it('iptables: the NodePort jump on 192.168.0.2 only, KUBE-EXT to the slice endpoint', () => {
    const rules = ipt('node-ports');
    expect(rules.filter((l) => l.includes('must be the last rule'))).toEqual([
      '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS',
    ]);
    expect(rules).toContain('-A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-XPGD46QRK7WJZT7O');
    expect(rules).toContain('-A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVC-XPGD46QRK7WJZT7O');
    expect(rules).toContain('-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ');
    expect(rules).toContain('-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80');
  });

  it('iptables: the test case with 127.0.0.0/8 too, with and without localhost NodePorts', () => {
    const jumps = (set: Record<string, string>) => ipt('node-ports', set).filter((l) => l.includes('must be the last rule')).map((l) => /-d (\S+)/.exec(l)![1]);
    expect(jumps({ 'kubeProxy.nodePortAddresses': '[192.168.0.0/24, 127.0.0.0/8]' })).toEqual(['127.0.0.1', '192.168.0.2'].sort());
    expect(jumps({ 'kubeProxy.nodePortAddresses': '[192.168.0.0/24, 127.0.0.0/8]', 'kubeProxy.localhostNodePorts': 'false' })).toEqual(['192.168.0.2']);
  });

  it('nftables: @nodeport-ips holds 192.168.0.2; the NodePort element goes to external-, the endpoint DNATs', () => {
    const lines = nft('node-ports');
    expect(lines.filter((l) => l.includes('element ip kube-proxy nodeport-ips'))).toEqual(['add element ip kube-proxy nodeport-ips { 192.168.0.2 }']);
    expect(lines).toContain('add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }');
    expect(lines).toContain('add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80');
  });

  it('the slice endpoint has no node name, so it is no node\'s local endpoint', () => {
    const local = ipt('node-ports', { 'services.svc1.externalTrafficPolicy': 'Local' });
    expect(local.some((l) => l.startsWith('-A KUBE-SVL-'))).toBe(false);
    expect(local.find((l) => l.includes('has no local endpoints') && l.includes('--dport 3001'))).toMatch(/-j DROP$/);
  });
});

describe('TestInternalExternalMasquerade, as a topology file', () => {
  it('the same IPs in three slices: every Service gets both endpoints', () => {
    const rules = ipt('internal-external-masquerade');
    for (const svc of ['svc1', 'svc2', 'svc3']) {
      const dnat = rules.filter((l) => l.includes(`--comment ns1/${svc}:p80 -m tcp -p tcp -j DNAT`)).map((l) => l.split(' ').at(-1));
      // svc3 is internalTrafficPolicy Local, but its NodePort (Cluster) still reaches both.
      expect(dnat.sort(), svc).toEqual(['10.180.0.1:80', '10.180.1.1:80']);
    }
  });

  it('iptables: off-cluster sources masqueraded by the ClusterCIDR detector; pod traffic short-circuits svc2', () => {
    const rules = ipt('internal-external-masquerade');
    expect(rules.filter((l) => /cluster IP" .* -j KUBE-MARK-MASQ$/.test(l)).every((l) => l.includes('! -s 10.0.0.0/8'))).toBe(true);
    expect(rules.some((l) => /pod traffic for ns1\/svc2:p80 external destinations" -s 10\.0\.0\.0\/8 -j KUBE-SVC-/.test(l))).toBe(true);
    // svc2's Local policy on test-node: its local endpoint only.
    const svl = rules.filter((l) => /^-A KUBE-SVL-\S+ .*ns1\/svc2:p80 ->/.test(l));
    expect(svl.map((l) => /-> (\S+)"/.exec(l)![1])).toEqual(['10.180.0.1:80']);
  });

  it('masqueradeAll: every ClusterIP connection masqueraded, in both modes', () => {
    const rules = ipt('internal-external-masquerade', { 'kubeProxy.masqueradeAll': 'true' }).filter((l) => /cluster IP" .* -j KUBE-MARK-MASQ$/.test(l));
    expect(rules).toHaveLength(3);
    expect(rules.some((l) => l.includes('-s '))).toBe(false);
    const lines = nft('internal-external-masquerade', { 'kubeProxy.masqueradeAll': 'true' }).filter((l) => /ip daddr 172\.30\.0\.4\d .*jump mark-for-masquerade/.test(l));
    expect(lines.map((l) => / (\S+) jump/.exec(l)![1]).sort()).toEqual(['172.30.0.41', '172.30.0.42', '172.30.0.43']);
  });

  it('nftables, NodeCIDR detector on remote: its own pod range', () => {
    const lines = nft('internal-external-masquerade', { 'kubeProxy.detectLocalMode': 'NodeCIDR' }, 'remote');
    expect(lines.some((l) => l.includes('ip daddr 172.30.0.41 ip saddr != 10.180.1.0/24 jump mark-for-masquerade'))).toBe(true);
    expect(lines.some((l) => /external-\S+ ip saddr 10\.180\.1\.0\/24 goto service-\S+ comment "short-circuit pod traffic"/.test(l))).toBe(true);
  });

  it('the derived walkthrough sends each NodePort to both nodes and expects the Local one to keep the source', () => {
    const paths = deriveWalkthrough(world('internal-external-masquerade')).walkthrough.paths;
    const svc2 = paths.filter((p) => p.traffic!.to.endsWith(':3002') && !p.traffic!.to.startsWith('127.'));
    expect(new Set(svc2.map((p) => p.traffic!.to))).toEqual(new Set(['192.168.0.2:3002', '192.168.0.3:3002']));
    expect(svc2.flatMap((p) => p.steps.map((s) => s.title)).some((t) => /masqueraded to/.test(t))).toBe(false);
    // Upstream's "localhost to NodePort" cases: masqueraded whatever the policy (iptables mode).
    const localhost = paths.filter((p) => p.traffic!.to === '127.0.0.1:3002');
    expect(localhost.length).toBeGreaterThan(0);
    expect(localhost.every((p) => p.steps.some((s) => /masqueraded to/.test(s.title)))).toBe(true);
  });
});

describe('endpointSlices: checks', () => {
  const FILE = join(import.meta.dirname, '..', 'fixtures', 'upstream-worlds', 'node-ports.yaml');
  const fields = (set: Record<string, string>) => problemsOf(() => loadTopology(FILE, set)).map((p) => `${p.field}: ${p.message}`);
  it('refuses a slice the lab cannot serve, naming the field', () => {
    expect(fields({ 'endpointSlices.svc1-1.service': 'nope' })).toEqual([expect.stringMatching(/^endpointSlices\[0\]\.service: no service ns1\/nope/)]);
    expect(fields({ 'endpointSlices.svc1-1.ports': '[{name: http, port: 80}]' })).toEqual([expect.stringMatching(/^endpointSlices\[0\]\.ports\[0\]\.name: service ns1\/svc1 has no TCP port named "http"/)]);
    expect(fields({ 'endpointSlices.svc1-1.endpoints': '[{address: 10.180.0.9}]' })).toEqual([expect.stringMatching(/^endpointSlices\[0\]\.endpoints\[0\]\.address: 10\.180\.0\.9 is no pod's address/)]);
    expect(fields({ 'endpointSlices.svc1-1.endpoints': '[{address: 10.180.0.1, nodeName: other-node}]' })).toEqual([expect.stringMatching(/runs on test-node, not other-node/)]);
    expect(fields({ 'endpointSlices.svc1-1.endpoints': '[{address: 10.180.0.1}, {address: 10.180.0.1, nodeName: test-node}]' })).toEqual([expect.stringMatching(/also listed at endpointSlices\[0\]\.endpoints\[0\]/)]);
    expect(fields({ 'services.svc1.selector': '{app: x}' }).some((f) => f.startsWith('endpointSlices[0].service: service ns1/svc1 has a selector'))).toBe(true);
    expect(fields({ 'nodes.test-node.bridgeAddress': '10.180.1.254' })).toEqual([expect.stringMatching(/^nodes\[0\]\.bridgeAddress: 10\.180\.1\.254 is not a host address of podCIDR/)]);
  });

  it('serving independent of ready: a not-ready, serving, terminating endpoint is the fallback', () => {
    const t = world('node-ports', { 'endpointSlices.svc1-1.endpoints': '[{address: 10.180.0.1, ready: false, serving: true, terminating: true}]' });
    expect(resyncRestore(kubeProxyRules(t, 'test-node'))).toContain('--to-destination 10.180.0.1:80');
    const notServing = world('node-ports', { 'endpointSlices.svc1-1.endpoints': '[{address: 10.180.0.1, ready: false, terminating: true}]' });
    expect(resyncRestore(kubeProxyRules(notServing, 'test-node'))).toMatch(/ns1\/svc1:p80 has no endpoints.* -j REJECT/);
  });

  it('a slice port other than the targetPort: the endpoint is DNATed to it and the pod listens there', async () => {
    const { planLab } = await import('../../lab/plan/plan.js');
    const t = world('node-ports', { 'endpointSlices.svc1-1.ports': '[{name: p80, port: 8080}]' });
    expect(resyncRestore(kubeProxyRules(t, 'test-node'))).toContain('--to-destination 10.180.0.1:8080');
    expect(planLab(t).workloads.find((w) => w.pod === 'ep-1')!.ports).toEqual([8080]);
  });
});
