import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kubeProxyRules, resyncRestore } from '../../lab/plan/kube-proxy/iptables.js';
import { nftablesRules, renderNftAdds } from '../../lab/plan/kube-proxy/nftables.js';
import { planLab } from '../../lab/plan/plan.js';
import { loadTopology } from '../../lab/topology/load.js';
import { deriveWalkthrough } from '../../lab/verify/derive/index.js';
import { problemsOf } from './helpers.js';

/**
 * kube-proxy's settings beyond its mode, as upstream's proxier tests exercise them
 * (pkg/proxy/{iptables,nftables}/proxier_test.go: TestNodePorts' nodePortAddresses and
 * localhostNodePorts cases, TestInternalExternalMasquerade's masqueradeAll and local detectors),
 * on the nodeport scenario: node1 at 10.240.0.4, its pods in 10.244.0.0/24 on cbr0 (10.244.0.1).
 */
const iptables = (set: Record<string, string>, node = 'node1') => resyncRestore(kubeProxyRules(loadTopology('nodeport', set).topology, node));
const nft = (set: Record<string, string>, node = 'node1') => renderNftAdds(nftablesRules(loadTopology('nodeport', { ...set, 'kubeProxy.mode': 'nftables' }).topology, node)).join('\n');
const lastJumps = (text: string) => text.split('\n').filter((l) => l.includes('must be the last rule'));

describe('nodePortAddresses and localhostNodePorts (TestNodePorts)', () => {
  it('iptables, unset: every local address, 127.0.0.1 too (addrtype LOCAL)', () => {
    expect(lastJumps(iptables({}))).toEqual([expect.stringMatching(/-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS$/)]);
  });

  it('iptables, localhostNodePorts false: every local address but 127.0.0.0/8', () => {
    expect(lastJumps(iptables({ 'kubeProxy.localhostNodePorts': 'false' }))).toEqual([expect.stringMatching(/-m addrtype --dst-type LOCAL ! -d 127\.0\.0\.0\/8 -j KUBE-NODEPORTS$/)]);
  });

  it('iptables, CIDRs: one jump per node address they hold; loopback only with localhost NodePorts', () => {
    expect(lastJumps(iptables({ 'kubeProxy.nodePortAddresses': '[10.240.0.0/24]' }))).toEqual([expect.stringMatching(/ -d 10\.240\.0\.4 -j KUBE-NODEPORTS$/)]);
    const both = lastJumps(iptables({ 'kubeProxy.nodePortAddresses': '[10.240.0.0/24, 127.0.0.0/8]' }));
    expect(both.map((l) => /-d (\S+)/.exec(l)![1])).toEqual(['10.240.0.4', '127.0.0.1']);
    const noLocal = lastJumps(iptables({ 'kubeProxy.nodePortAddresses': '[10.240.0.0/24, 127.0.0.0/8]', 'kubeProxy.localhostNodePorts': 'false' }));
    expect(noLocal.map((l) => /-d (\S+)/.exec(l)![1])).toEqual(['10.240.0.4']);
    // The bridge's address is the node's too: a CIDR holding it opens NodePorts there.
    expect(lastJumps(iptables({ 'kubeProxy.nodePortAddresses': '[10.244.0.0/16]' })).map((l) => /-d (\S+)/.exec(l)![1])).toEqual(['10.244.0.1']);
  });

  it('iptables, primary: the node address only, on each node its own', () => {
    expect(lastJumps(iptables({ 'kubeProxy.nodePortAddresses': '[primary]' }, 'node2'))).toEqual([expect.stringMatching(/ -d 10\.240\.0\.5 -j KUBE-NODEPORTS$/)]);
  });

  it('route_localnet is set only where localhost NodePorts answer', () => {
    const sysctl = (set: Record<string, string>) => planLab(loadTopology('nodeport', set).topology).namespaces.filter((n) => n.role === 'node').map((n) => n.sysctls['net.ipv4.conf.all.route_localnet']);
    expect(sysctl({})).toEqual(['1', '1']);
    expect(sysctl({ 'kubeProxy.localhostNodePorts': 'false' })).toEqual([undefined, undefined]);
    expect(sysctl({ 'kubeProxy.nodePortAddresses': '[primary]' })).toEqual([undefined, undefined]);
    expect(sysctl({ 'kubeProxy.mode': 'nftables' })).toEqual([undefined, undefined]);
  });

  it('nftables, unset (primary): @nodeport-ips holds the node address', () => {
    const text = nft({});
    expect(text).toContain('add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports');
    expect(text.match(/add element ip kube-proxy nodeport-ips \{ (\S+) \}/g)).toEqual(['add element ip kube-proxy nodeport-ips { 10.240.0.4 }']);
  });

  it('nftables, 0.0.0.0/0: every local address but localhost (fib), and no nodeport-ips set', () => {
    const text = nft({ 'kubeProxy.nodePortAddresses': '[0.0.0.0/0]' });
    expect(text).toContain('add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports');
    expect(text).toContain('add rule ip kube-proxy nodeport-endpoints-check fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports');
    expect(text).not.toContain('nodeport-ips');
  });

  it('nftables, CIDRs with loopback: localhost is never a NodePort address', () => {
    const text = nft({ 'kubeProxy.nodePortAddresses': '[10.0.0.0/8, 127.0.0.0/8]' });
    expect(text.match(/nodeport-ips \{ (\S+) \}/g)).toEqual(['nodeport-ips { 10.240.0.4 }', 'nodeport-ips { 10.244.0.1 }']);
  });

  it('the derived walkthrough leaves out NodePorts on addresses kube-proxy does not open', () => {
    const d = deriveWalkthrough(loadTopology('nodeport', { 'kubeProxy.nodePortAddresses': '[10.240.0.4/32]' }).topology);
    const nodePorts = d.walkthrough.paths.map((p) => p.traffic!.to).filter((to) => to.endsWith(':32000'));
    expect(new Set(nodePorts)).toEqual(new Set(['10.240.0.4:32000']));
    expect(d.skipped.join('\n')).toMatch(/NodePort on node2: kubeProxy\.nodePortAddresses leaves out 10\.240\.0\.5/);
  });
});

describe('masqueradeAll and the local-traffic detector (TestInternalExternalMasquerade)', () => {
  const clusterIPMasq = (text: string) => text.split('\n').filter((l) => /cluster IP" .*-j KUBE-MARK-MASQ$/.test(l));
  it('iptables: ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix, masqueradeAll', () => {
    expect(clusterIPMasq(iptables({}))[0]).toMatch(/--dport 443 ! -s 10\.244\.0\.0\/16 -j KUBE-MARK-MASQ$/);
    expect(clusterIPMasq(iptables({ 'kubeProxy.detectLocalMode': 'NodeCIDR' }, 'node2'))[0]).toMatch(/! -s 10\.244\.1\.0\/24 -j/);
    expect(clusterIPMasq(iptables({ 'kubeProxy.detectLocalMode': 'BridgeInterface' }))[0]).toMatch(/! -i cbr0 -j/);
    expect(clusterIPMasq(iptables({ 'kubeProxy.detectLocalMode': 'InterfaceNamePrefix', 'kubeProxy.detectLocal': '{interfaceNamePrefix: cali}' }))[0]).toMatch(/! -i cali\+ -j/);
    expect(clusterIPMasq(iptables({ 'kubeProxy.masqueradeAll': 'true' }))[0]).toMatch(/-d 172\.31\.0\.5 --dport 443 -j KUBE-MARK-MASQ$/);
  });

  it('iptables: the Local policy short-circuit for pod traffic follows the detector', () => {
    const text = iptables({ 'services.web.externalTrafficPolicy': 'Local', 'kubeProxy.detectLocalMode': 'BridgeInterface' });
    expect(text).toMatch(/pod traffic for default\/web:https external destinations" -i cbr0 -j KUBE-SVC-/);
  });

  it('nftables: the same matches in nft words', () => {
    const masq = (text: string) => text.split('\n').find((l) => /ip daddr 172\.31\.0\.5 .*jump mark-for-masquerade$/.test(l));
    expect(masq(nft({}))).toMatch(/ip daddr 172\.31\.0\.5 ip saddr != 10\.244\.0\.0\/16 jump/);
    expect(masq(nft({ 'kubeProxy.detectLocalMode': 'NodeCIDR' }))).toMatch(/ip saddr != 10\.244\.0\.0\/24 jump/);
    expect(masq(nft({ 'kubeProxy.detectLocalMode': 'BridgeInterface' }))).toMatch(/iifname != cbr0 jump/);
    expect(masq(nft({ 'kubeProxy.detectLocalMode': 'InterfaceNamePrefix' }))).toMatch(/iifname != veth\* jump/);
    expect(masq(nft({ 'kubeProxy.masqueradeAll': 'true' }))).toMatch(/ip daddr 172\.31\.0\.5 jump mark-for-masquerade$/);
    expect(nft({ 'services.web.externalTrafficPolicy': 'Local', 'kubeProxy.detectLocalMode': 'InterfaceNamePrefix' })).toMatch(/iifname veth\* goto service-\S+ comment "short-circuit pod traffic"/);
  });

  it('the derived walkthrough expects pods masqueraded where kube-proxy masquerades them', () => {
    // Steps that expect a ClusterIP connection masqueraded (by default only a pod reaching itself, hairpin).
    const masqueraded = (set: Record<string, string>) =>
      deriveWalkthrough(loadTopology('nodeport', set).topology).walkthrough.paths.filter((p) => p.traffic!.to === '172.31.0.5:443').flatMap((p) => p.steps.filter((s) => /masqueraded to/.test(s.title))).length;
    const byDefault = masqueraded({});
    expect(masqueraded({ 'kubeProxy.masqueradeAll': 'true' })).toBeGreaterThan(byDefault);
    // veth+ never matches a pod's packets here: they enter the node through its bridge, cbr0.
    expect(masqueraded({ 'kubeProxy.detectLocalMode': 'InterfaceNamePrefix' })).toBe(masqueraded({ 'kubeProxy.masqueradeAll': 'true' }));
    expect(masqueraded({ 'kubeProxy.detectLocalMode': 'BridgeInterface' })).toBe(byDefault);
  });
});

describe('checks, with file and line', () => {
  const fields = (set: Record<string, string>) => problemsOf(() => loadTopology('nodeport', set)).map((p) => `${p.field}: ${p.message}`);
  it('refuses options where their mode does not use them, and addresses that open nothing', () => {
    expect(fields({ 'kubeProxy.mode': 'nftables', 'kubeProxy.localhostNodePorts': 'true' })).toEqual([expect.stringMatching(/^kubeProxy\.localhostNodePorts: nftables mode has no localhost NodePorts/)]);
    expect(fields({ 'kubeProxy.detectLocal': '{bridgeInterface: cbr0}' })).toEqual([expect.stringMatching(/^kubeProxy\.detectLocal\.bridgeInterface: is used only with detectLocalMode: BridgeInterface/)]);
    expect(fields({ 'kubeProxy.detectLocalMode': 'BridgeInterface', 'kubeProxy.detectLocal': '{bridgeInterface: br9}' })).toEqual([expect.stringMatching(/no node has a bridge named br9/)]);
    expect(fields({ 'kubeProxy.nodePortAddresses': '[192.168.0.0/24]' })).toEqual([expect.stringMatching(/^kubeProxy\.nodePortAddresses: 192\.168\.0\.0\/24 matches no address of any node/)]);
    expect(fields({ 'kubeProxy.nodePortAddresses': '[10.240.0.4/24]' })).toEqual([expect.stringMatching(/^kubeProxy\.nodePortAddresses\[0\]: .*not a valid network/)]);
    expect(fields({ 'kubeProxy.nodePortAddresses': '[primary]' })).toEqual([]);
  });

  it('cluster.serviceNodePortRange moves the NodePort range', () => {
    expect(fields({ 'cluster.serviceNodePortRange': '30000-31000' })).toEqual([expect.stringMatching(/^services\[0\]\.ports\[0\]\.nodePort: 32000 is outside the NodePort range 30000-31000/)]);
    expect(fields({ 'cluster.serviceNodePortRange': '20000-40000', 'services.web.ports': '[{name: https, port: 443, targetPort: 8443, nodePort: 39000}]' })).toEqual([]);
    expect(fields({ 'cluster.serviceNodePortRange': '40000-30000' })).toEqual([expect.stringMatching(/^cluster\.serviceNodePortRange: 40000-30000 is not a port range/)]);
    // In a file: each problem at its own line.
    const where = problemsOf(() => loadTopology(join(import.meta.dirname, '..', 'fixtures', 'bad', 'kube-proxy-options.yaml'))).map((p) => `${p.line} ${p.field}`);
    expect(where).toEqual(['6 cluster.serviceNodePortRange', '47 kubeProxy.localhostNodePorts']);
  });
});

describe('a health check node port under Cluster policy (TestOverallIPTablesRules svc5)', () => {
  it('is accepted and ignored: no ACCEPT rule, no health check server, the port still taken', async () => {
    const { healthCheckServices } = await import('../../lab/plan/kube-proxy/health.js');
    const t = loadTopology('loadbalancer', { 'services.web.healthCheckNodePort': '32100' }).topology;
    expect(t.services[0]!.externalTrafficPolicy).toBe('Cluster');
    expect(resyncRestore(kubeProxyRules(t, 'node1'))).not.toContain('health check node port');
    expect(renderNftAdds(nftablesRules(t, 'node1')).join('\n')).not.toContain('32100');
    expect(healthCheckServices(t)).toEqual([]);
    expect(problemsOf(() => loadTopology('loadbalancer', { 'services.web.healthCheckNodePort': '32000' })).map((p) => p.message)).toEqual([expect.stringMatching(/32000 is already used/)]);
  });
});

describe('SCTP service ports', () => {
  const sctp = { 'services.web.ports': '[{name: https, protocol: SCTP, port: 443, targetPort: 8443, nodePort: 32000}]' };
  it('iptables: -m sctp -p sctp matches, chains hashed with the protocol', () => {
    const rules = iptables(sctp).split('\n');
    const tcpSvc = /KUBE-SVC-\S+/.exec(iptables({}))![0];
    const entry = rules.find((l) => l.includes('default/web:https cluster IP') && l.startsWith('-A KUBE-SERVICES'))!;
    expect(entry).toMatch(/-m sctp -p sctp -d 172\.31\.0\.5 --dport 443 -j KUBE-SVC-/);
    expect(entry).not.toContain(tcpSvc);
    expect(rules.some((l) => /^-A KUBE-NODEPORTS .* -m sctp -p sctp --dport 32000 -j KUBE-EXT-/.test(l))).toBe(true);
    expect(rules.filter((l) => /-m sctp -p sctp -j DNAT --to-destination 10\.244\.\d\.\d+:8443$/.test(l))).toHaveLength(2);
  });

  it('nftables: sctp in the map keys and the DNAT', () => {
    const text = nft(sctp);
    expect(text).toMatch(/add element ip kube-proxy service-ips \{ 172\.31\.0\.5 \. sctp \. 443 : goto service-\S+-default\/web\/sctp\/https \}/);
    expect(text).toMatch(/add element ip kube-proxy service-nodeports \{ sctp \. 32000 : goto external-/);
    expect(text).toMatch(/meta l4proto sctp dnat to 10\.244\.0\.3:8443/);
  });

  it('the derived walkthrough says it cannot try it', () => {
    expect(() => deriveWalkthrough(loadTopology('nodeport', sctp).topology)).toThrow(/SCTP: verify sends HTTP over TCP and datagrams over UDP, not SCTP/);
  });
});

describe('more than one address per node', () => {
  const extra = { 'nodes.node1.extraAddresses': '[10.240.0.14]' };
  it('eth0 gets the extra address; nodePortAddresses CIDRs open NodePorts on it too, "primary" does not', () => {
    const batch = planLab(loadTopology('nodeport', extra).topology).namespaces.find((n) => n.host === 'node1')!.batch.join('\n');
    expect(batch).toContain('addr add 10.240.0.14/24 dev eth0');
    expect(lastJumps(iptables({ ...extra, 'kubeProxy.nodePortAddresses': '[10.240.0.0/24]' })).map((l) => /-d (\S+)/.exec(l)![1])).toEqual(['10.240.0.4', '10.240.0.14']);
    expect(lastJumps(iptables({ ...extra, 'kubeProxy.nodePortAddresses': '[primary]' })).map((l) => /-d (\S+)/.exec(l)![1])).toEqual(['10.240.0.4']);
    expect(nft({ ...extra, 'kubeProxy.nodePortAddresses': '[10.240.0.14/32]' })).toContain('add element ip kube-proxy nodeport-ips { 10.240.0.14 }');
  });

  it('refuses an extra address outside the node network or already used', () => {
    const f = (v: string) => problemsOf(() => loadTopology('nodeport', { 'nodes.node1.extraAddresses': v })).map((p) => `${p.field}: ${p.message}`);
    expect(f('[10.241.0.9]')).toEqual([expect.stringMatching(/^nodes\[0\]\.extraAddresses\[0\]: 10\.241\.0\.9 is not a host address of network "nodes"/)]);
    expect(f('[10.240.0.5]').some((m) => /already used/.test(m))).toBe(true);
  });
});
