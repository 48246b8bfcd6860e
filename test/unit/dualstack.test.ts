import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planLab } from '../../lab/plan/plan.js';
import { allocatePodAddress6, planScale, withScale } from '../../lab/plan/scale.js';
import { syncScope } from '../../lab/plan/kube-proxy/scope.js';
import { planChangeSync } from '../../lab/plan/kube-proxy/sync.js';
import { familiesOf, ipv6View, serviceFamilies } from '../../lab/topology/family.js';
import { loadTopology } from '../../lab/topology/load.js';
import { formatIPv6, parseCidr6, parseIPv6, parseIPv6Loose } from '../../lab/util/ipv6.js';
import { problemsOf } from './helpers.js';

/** Dual-stack (docs/dualstack.md): the model, its checks, and what the plan does with it. */
const refused = (overrides: Record<string, string>) => {
  const problems = problemsOf(() => loadTopology('dualstack', overrides));
  expect(problems, JSON.stringify(overrides)).not.toEqual([]);
  return problems.map((p) => ({ field: p.field, line: p.line, message: p.message }));
};

describe('IPv6 text', () => {
  it('accepts only the RFC 5952 form, and says which one to write', () => {
    expect(parseIPv6('fd00:10:240::4')).toBe(0xfd000010024000000000000000000004n);
    expect(parseIPv6('fd00:10:240:0:0:0:0:4')).toBeUndefined();
    expect(parseIPv6('FD00:10:240::4')).toBeUndefined();
    expect(formatIPv6(parseIPv6Loose('fd00:0010:0240:0000:0000:0000:0000:0004')!)).toBe('fd00:10:240::4');
    expect(formatIPv6(parseIPv6Loose('1:0:0:1:0:0:0:1')!)).toBe('1:0:0:1::1');
    expect(parseIPv6('1::2::3')).toBeUndefined();
    expect(parseCidr6('fd00:10:244::/56')?.prefix).toBe(56);
    expect(parseCidr6('fd00:10:244::1/64')).toBeUndefined();
  });
});

describe('Service IP families (the API server rules)', () => {
  it('settles ipFamilyPolicy and ipFamilies as the API server does', () => {
    expect(serviceFamilies({}, true)).toEqual(['IPv4']);
    expect(serviceFamilies({ ipFamilyPolicy: 'PreferDualStack' }, true)).toEqual(['IPv4', 'IPv6']);
    expect(serviceFamilies({ ipFamilyPolicy: 'PreferDualStack' }, false)).toEqual(['IPv4']);
    expect(serviceFamilies({ ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4'] }, true)).toEqual(['IPv4', 'IPv6']);
    expect(serviceFamilies({ ipFamilyPolicy: 'RequireDualStack' }, false)).toMatch(/not configured for dual-stack/);
    expect(serviceFamilies({ ipFamilies: ['IPv4', 'IPv6'] }, true)).toMatch(/SingleStack/);
    expect(serviceFamilies({ ipFamilies: ['IPv6'] }, true)).toMatch(/IPv4-primary/);
  });
});

describe('the dualstack topology', () => {
  const t = loadTopology('dualstack').topology;
  const v6 = ipv6View(t)!;

  it('its IPv6 view has every host at its IPv6 address and the Service at its IPv6 ClusterIP', () => {
    expect(familiesOf(t, t.services[0]!)).toEqual(['IPv4', 'IPv6']);
    expect(v6.nodes.map((n) => [n.address, n.podCIDR])).toEqual([['fd00:10:240::4', 'fd00:10:244::/64'], ['fd00:10:240::5', 'fd00:10:244:1::/64']]);
    expect(v6.pods.map((p) => p.address)).toEqual(['fd00:10:244::3', 'fd00:10:244:1::2']);
    expect(v6.services.map((s) => s.clusterIP)).toEqual(['fd00:172:31::5']);
    expect(v6.cluster.podCIDR).toBe('fd00:10:244::/56');
  });

  it('plans IPv6 addresses with nodad, IPv6 forwarding inside the lab only, and the IPv6 routes', () => {
    const plan = planLab(t);
    const ns = (host: string) => plan.namespaces.find((n) => n.host === host && n.role !== 'node' ? true : n.host === host)!;
    expect(ns('node1').batch).toContain('addr add fd00:10:240::4/64 dev eth0 nodad');
    expect(ns('node1').batch).toContain('addr add fd00:10:244::1/64 dev cbr0 nodad');
    expect(ns('node1').batch).toContain('route add fd00:10:241::/64 via fd00:10:240::1');
    expect(ns('node1').sysctls['net.ipv6.conf.all.forwarding']).toBe('1');
    expect(ns('web-2').batch).toContain('addr add fd00:10:244:1::2/64 dev eth0 nodad');
    expect(ns('web-2').batch).toContain('route add fd00:10:240::/64 via fd00:10:244:1::1');
    expect(ns('router').batch).toContain('route add fd00:10:244:1::/64 via fd00:10:240::5');
    // The IPv4 routes never see an IPv6 one, and no address goes without nodad.
    expect(ns('router').batch.filter((l) => l.startsWith('route add 10.'))).toHaveLength(2);
    expect(plan.namespaces.flatMap((n) => n.batch).filter((l) => /^addr add [0-9a-f:]+\//.test(l) && l.includes(':') && !l.endsWith(' nodad'))).toEqual([]);
  });

  it('writes one payload per family per node: ip6tables-restore input, or table ip6 kube-proxy', () => {
    const ipt = planLab(t).kubeProxy[0]!;
    expect(ipt.payload).toContain('-d 172.31.0.5/32'.replace('/32', ''));
    expect(ipt.payload6).toContain('-A KUBE-SERVICES -m comment --comment "default/web:https cluster IP" -m tcp -p tcp -d fd00:172:31::5 --dport 443');
    expect(ipt.payload6).toContain('--to-destination [fd00:10:244:1::2]:8443');
    expect(ipt.payload6).not.toContain('10.244.');
    const nft = planLab(loadTopology('dualstack', { 'kubeProxy.mode': 'nftables' }).topology).kubeProxy[0]!;
    expect(nft.payload).toContain('add table ip kube-proxy');
    expect(nft.payload6).toContain('add table ip6 kube-proxy');
    expect(nft.payload6).toContain('add element ip6 kube-proxy nodeport-ips { fd00:10:240::4 }');
    // The local-traffic detector speaks the family of the view: ip6 saddr, never ip saddr, in the ip6 table.
    expect(nft.payload6).toMatch(/ip6 daddr fd00:172:31::5 ip6 saddr != fd00:10:244::\/56 jump mark-for-masquerade/);
    expect(nft.payload6).not.toMatch(/\bip saddr/);
  });
});

describe('IPv4-only labs are untouched', () => {
  it('no built-in IPv4 topology gets an IPv6 payload, address or sysctl', () => {
    for (const f of readdirSync('topologies').filter((x) => /^[a-z-]+\.yaml$/.test(x) && x !== 'dualstack.yaml')) {
      for (const mode of ['iptables', 'nftables']) {
        const plan = planLab(loadTopology(f.replace('.yaml', ''), { 'kubeProxy.mode': mode }).topology);
        expect(plan.kubeProxy.every((k) => !('payload6' in k)), f).toBe(true);
        expect(JSON.stringify(plan.namespaces), f).not.toMatch(/ipv6|nodad/);
      }
    }
  });
});

describe('bad dual-stack input is refused with field and line', () => {
  it('an IPv6 address outside its family range, named by file and line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dualstack-'));
    try {
      const file = join(dir, 'bad6.yaml');
      writeFileSync(file, readFileSync('topologies/dualstack.yaml', 'utf8').replace('address6: "fd00:10:244:1::2"', 'address6: "fd00:10:244::9"').replace(/^walkthrough:.*$/m, ''));
      expect(problemsOf(() => loadTopology(file))).toEqual([
        expect.objectContaining({ field: 'pods[1].address6', line: 34, message: expect.stringContaining('not inside the podCIDR6 of node "node2" (fd00:10:244:1::/64)') }),
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(refused({ 'nodes.node1.address6': 'fd00:10:241::4' })[0]).toMatchObject({ field: 'nodes[0].address6', message: expect.stringContaining('not inside network "nodes"\'s subnet6') });
    expect(refused({ 'services.web.clusterIPs': '[172.31.0.5, "fd00:172:32::5"]' })[0]).toMatchObject({ field: 'services[0].clusterIPs[1]', message: expect.stringContaining('not inside cluster.serviceCIDR6') });
  });

  it('an IPv6 address not in RFC 5952 form, with the form to write', () => {
    expect(refused({ 'clients.client.address6': 'fd00:10:241:0::4' })[0]).toMatchObject({ field: 'clients[0].address6', message: expect.stringContaining('write it as fd00:10:241::4') });
  });

  it('a Service family the cluster does not have', () => {
    const problems = refused({ 'cluster.podCIDR6': '', 'cluster.serviceCIDR6': '', 'routers.router.routes': '[]' });
    expect(problems).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'services[0].ipFamilies', message: expect.stringContaining('IPv6 is not configured on this cluster') })]));
    expect(refused({ 'cluster.podCIDR6': '', 'cluster.serviceCIDR6': '', 'services.web.ipFamilies': '' })).toEqual(
      expect.arrayContaining([expect.objectContaining({ field: 'services[0].ipFamilyPolicy', message: expect.stringContaining('RequireDualStack, but this cluster is not configured') })]),
    );
  });

  it('a dual-stack Service without its IPv6 ClusterIP', () => {
    expect(refused({ 'services.web.clusterIPs': '' })[0]).toMatchObject({ field: 'services[0].clusterIPs', message: expect.stringContaining('needs its IPv6 ClusterIP') });
  });

  it('every pod network mode carries IPv6: none is refused for a dual-stack cluster', () => {
    for (const mode of ['routed', 'host-gw', 'vxlan', 'bgp']) expect(problemsOf(() => loadTopology('dualstack', { 'podNetwork.mode': mode })), mode).toEqual([]);
  });

  it('an IPv6 route through an IPv4 next hop', () => {
    expect(refused({ 'routers.router.routes': '[{ to: "fd00:10:244::/64", via: 10.240.0.4 }]' })[0]).toMatchObject({ field: 'routers[0].routes[0].via', message: expect.stringContaining('an IPv6 route takes an IPv6 next hop') });
  });
});

describe("the IPv6 proxier's stale-chain sweep", () => {
  /** The per-service chains an `up` left in a node's ip6 tables, read off its payload as ip6tables-save / nft list chains would list them. */
  const chainsOf = (payload: string) => [...payload.matchAll(/^(?::(\S+) - |add chain ip6 kube-proxy (\S+))/gm)].map((m) => (m[1] ?? m[2])!);

  it.each(['iptables', 'nftables'] as const)('deletes a removed IPv6 endpoint chain in the same restore (%s mode)', (mode) => {
    const before = loadTopology('dualstack', { 'kubeProxy.mode': mode }).topology;
    const after = { ...before, pods: before.pods.filter((p) => p.name !== 'web-2') };
    const up = planLab(before).kubeProxy.find((k) => k.node === 'node1')!;
    const chains = chainsOf(up.payload6!);
    const existing6 = { natChains: chains, nft: { chains, sets: [] } };
    const sync = planChangeSync(before, after, 'node1', syncScope(before, after), undefined, existing6);
    // The chain for [fd00:10:244:1::2]:8443 (web-2's IPv6 endpoint) and only it.
    const gone = mode === 'nftables' ? 'endpoint-GR3I3XDJ-default/web/tcp/https__fd00.10.244.1..2/8443' : sync.removed6![0]!;
    expect(sync.removed6).toEqual([gone]);
    expect(chains).toContain(gone);
    if (mode === 'iptables') {
      expect(gone).toMatch(/^KUBE-SEP-/);
      expect(sync.payload6).toMatch(new RegExp(`^:${gone} - \\[0:0\\]\\n[^]*^-X ${gone}$`, 'm'));
    } else {
      expect(sync.payload6).toContain(`flush chain ip6 kube-proxy ${gone}`);
      expect(sync.payload6).toContain(`delete chain ip6 kube-proxy ${gone}`);
    }
    // Without the tables read back (largeClusterMode between sweeps) nothing is deleted.
    expect(planChangeSync(before, after, 'node1', syncScope(before, after), undefined).removed6).toEqual([]);
  });
});

describe('IPv6 external and load balancer IPs and source ranges (the *6 fields)', () => {
  const FILE = 'test/fixtures/worlds/dualstack-loadbalancer.yaml';
  const load = (set: Record<string, string> = {}) => loadTopology(FILE, set).topology;

  it('the IPv6 view carries the IPv6 entries; the IPv4 proxier never sees them', () => {
    const t = load();
    const v6 = ipv6View(t)!;
    expect(v6.services[0]).toMatchObject({ loadBalancerIPs: ['fd00:10:240::100'], externalIPs: ['fd00:10:240::200'], loadBalancerSourceRanges: ['fd00:10:241::4/128'] });
    expect(t.services[0]).toMatchObject({ loadBalancerIPs: ['10.240.0.100'], externalIPs: [], loadBalancerSourceRanges: [] });
    const k = planLab(t).kubeProxy[0]!;
    expect(k.payload).not.toMatch(/fd00:10:24[01]::/);
  });

  it('ip6tables: the LB IP through KUBE-FW, the allowed IPv6 range on to KUBE-EXT, the rest dropped in KUBE-PROXY-FIREWALL; the external IP straight to KUBE-EXT', () => {
    const p = planLab(load()).kubeProxy[0]!.payload6!;
    expect(p).toMatch(/^-A KUBE-SERVICES -m comment --comment "default\/web:https loadbalancer IP" -m tcp -p tcp -d fd00:10:240::100 --dport 443 -j KUBE-FW-54WW65JLHZHRV7HC$/m);
    expect(p).toMatch(/^-A KUBE-FW-54WW65JLHZHRV7HC -m comment --comment "default\/web:https loadbalancer IP" -s fd00:10:241::4\/128 -j KUBE-EXT-54WW65JLHZHRV7HC$/m);
    expect(p).toMatch(/^-A KUBE-PROXY-FIREWALL -m comment --comment "default\/web:https traffic not accepted by KUBE-FW-54WW65JLHZHRV7HC" -m tcp -p tcp -d fd00:10:240::100 --dport 443 -j DROP$/m);
    expect(p).toMatch(/^-A KUBE-SERVICES -m comment --comment "default\/web:https external IP" -m tcp -p tcp -d fd00:10:240::200 --dport 443 -j KUBE-EXT-54WW65JLHZHRV7HC$/m);
  });

  it('a node inside an IPv6 source range may reach the LB IP looped back with the LB IP as source (as for IPv4)', () => {
    const p = planLab(load({ 'services.web.loadBalancerSourceRanges6': '["fd00:10:240::/64"]' })).kubeProxy[0]!.payload6!;
    expect(p).toMatch(/^-A KUBE-FW-54WW65JLHZHRV7HC .* -s fd00:10:240::100 -j KUBE-EXT-54WW65JLHZHRV7HC$/m);
  });

  it('nftables: the LB IP in firewall-ips and service-ips of table ip6, the firewall chain on ip6 saddr', () => {
    const p = planLab(load({ 'kubeProxy.mode': 'nftables' })).kubeProxy[0]!.payload6!;
    expect(p).toContain('add element ip6 kube-proxy firewall-ips { fd00:10:240::100 . tcp . 443 : goto firewall-PET3V2EF-default/web/tcp/https }');
    expect(p).toContain('add element ip6 kube-proxy service-ips { fd00:10:240::100 . tcp . 443 : goto external-PET3V2EF-default/web/tcp/https }');
    expect(p).toContain('add element ip6 kube-proxy service-ips { fd00:10:240::200 . tcp . 443 : goto external-PET3V2EF-default/web/tcp/https }');
    expect(p).toContain('add rule ip6 kube-proxy firewall-PET3V2EF-default/web/tcp/https ip6 saddr != { fd00:10:241::4/128 } drop');
  });

  it('routes the IPv6 LB IP over both nodes, hashing ports as IPv4 does', () => {
    const router = planLab(load()).namespaces.find((n) => n.host === 'router')!;
    expect(router.batch).toContain('route add fd00:10:240::100/128 nexthop via fd00:10:240::4 nexthop via fd00:10:240::5');
    expect(router.sysctls['net.ipv6.fib_multipath_hash_policy']).toBe('1');
  });

  it('refuses where the family does not match, the type has no such field, or the address is off the IPv6 networks, with field and line', () => {
    const problems = (set: Record<string, string>) => problemsOf(() => loadTopology(FILE, set)).map((p) => ({ field: p.field, line: p.line, message: p.message }));
    expect(problems({ 'services.web.ipFamilyPolicy': 'SingleStack', 'services.web.clusterIPs': '[172.31.0.5]' })).toEqual(
      expect.arrayContaining([expect.objectContaining({ field: 'services[0].loadBalancerIPs6', line: 50, message: expect.stringContaining("IP families are IPv4: IPv6 entries need IPv6") })]),
    );
    expect(problems({ 'services.web.loadBalancerIPs6': '["fd00:10:250::100"]' })).toEqual([expect.objectContaining({ field: 'services[0].loadBalancerIPs6[0]', message: expect.stringContaining("outside the lab's IPv6 networks") })]);
    expect(problems({ 'services.web.externalIPs6': '["fd00:10:240:0::200"]' })).toEqual([expect.objectContaining({ field: 'services[0].externalIPs6[0]', message: expect.stringContaining('write it as fd00:10:240::200') })]);
    expect(problems({ 'services.web.loadBalancerSourceRanges6': '["fd00:10:241::4/64"]' })).toEqual([expect.objectContaining({ field: 'services[0].loadBalancerSourceRanges6[0]' })]);
    // An IPv4 address in an IPv6 field, and the other way round: the schema's own family.
    expect(problems({ 'services.web.loadBalancerIPs6': '[10.240.0.100]' })).toEqual([expect.objectContaining({ field: 'services[0].loadBalancerIPs6[0]', message: expect.stringContaining('IPv6') })]);
    expect(problems({ 'services.web.loadBalancerIPs': '["fd00:10:240::100"]' })).toEqual([expect.objectContaining({ field: 'services[0].loadBalancerIPs[0]', message: expect.stringContaining('IPv4') })]);
    expect(problems({ 'loadBalancer.mode': 'l2' })).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'services[0].loadBalancerIPs6', message: expect.stringContaining("MetalLB's IPv6 announcements are not built") })]));
    expect(problems({ 'services.web.type': 'NodePort', 'services.web.loadBalancerIPs': '[]' })).toEqual(
      expect.arrayContaining([expect.objectContaining({ field: 'services[0].loadBalancerIPs6', message: expect.stringContaining('only a service of type LoadBalancer') })]),
    );
  });
});

describe('lab scale on a dual-stack lab', () => {
  it('gives a new pod an IPv6 address too, the lowest free one of its node podCIDR6 after the bridge', () => {
    const t = loadTopology('dualstack').topology;
    const plan = planScale(t, 'web', 4);
    expect(plan.add.map((p) => [p.name, p.node, p.address, p.address6])).toEqual([
      ['web-3', 'node1', '10.244.0.2', 'fd00:10:244::2'],
      ['web-4', 'node2', '10.244.1.3', 'fd00:10:244:1::3'],
    ]);
    // Its namespace gets the IPv6 address, and the IPv6 proxier an endpoint for it.
    const after = withScale(t, plan);
    expect(planLab(after).namespaces.find((n) => n.host === 'web-3')!.batch).toContain('addr add fd00:10:244::2/64 dev eth0 nodad');
    expect(planLab(after).kubeProxy[0]!.payload6).toContain('--to-destination [fd00:10:244::2]:8443');
    expect(allocatePodAddress6('fd00:10:244::/126', new Set(['fd00:10:244::2', 'fd00:10:244::3']))).toBeUndefined();
  });
});
