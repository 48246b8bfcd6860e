import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planLab } from '../../lab/plan/plan.js';
import { loadTopology } from '../../lab/topology/load.js';
import { problemsOf } from './helpers.js';

/** Every pod network mode carries a dual-stack cluster's IPv6 (docs/dualstack.md, docs/pod-network.md). */
const planIn = (mode: string, more: Record<string, string> = {}) => {
  const plan = planLab(loadTopology('dualstack', { 'podNetwork.mode': mode, ...more }).topology);
  const ns = (host: string) => plan.namespaces.find((n) => n.host === host)!;
  return { plan, ns };
};
/** The lines after a line: a line that must come after another (an IPv6 route after the address that makes its next hop on-link). */
const indexOf = (lines: string[], line: string) => {
  const i = lines.indexOf(line);
  expect(i, `${line} not in\n${lines.join('\n')}`).toBeGreaterThanOrEqual(0);
  return i;
};

describe('host-gw over IPv6 (flannel GetV6Route)', () => {
  const { ns } = planIn('host-gw');

  it('each node routes the peer IPv6 pod CIDR via the peer IPv6 address on eth0, once eth0 has its IPv6 address', () => {
    const b = ns('node1').batch;
    expect(indexOf(b, 'route add fd00:10:244:1::/64 via fd00:10:240::5 dev eth0')).toBeGreaterThan(indexOf(b, 'addr add fd00:10:240::4/64 dev eth0 nodad'));
    expect(ns('node2').batch).toContain('route add fd00:10:244::/64 via fd00:10:240::4 dev eth0');
    expect(b).toContain('route add 10.244.1.0/24 via 10.240.0.5 dev eth0');
  });

  it('the router carries no pod-CIDR route of either family', () => {
    const routes = ns('router').batch.filter((l) => l.startsWith('route add'));
    expect(routes.filter((l) => /10\.244\.|fd00:10:244:/.test(l))).toEqual([]);
  });
});

describe('vxlan over IPv6 (flannel-v6.1)', () => {
  const { plan, ns } = planIn('vxlan');

  it('creates flannel-v6.1 beside flannel.1: VNI 1, port 8472, nolearning, over the node IPv6 address, a /128 at the IPv6 pod CIDR network address', () => {
    const b = ns('node1').batch;
    expect(b).toContain('link add flannel-v6.1 address 0e:f6:0a:f0:00:04 mtu 1430 type vxlan id 1 local fd00:10:240::4 dev eth0 dstport 8472 nolearning');
    expect(b).toContain('addr add fd00:10:244::/128 dev flannel-v6.1 nodad');
    expect(b).toContain('link add flannel.1 address 0e:fa:0a:f0:00:04 mtu 1450 type vxlan id 1 local 10.240.0.4 dev eth0 dstport 8472 nolearning');
    expect(ns('node1').sysctls['net/ipv6/conf/flannel-v6.1/accept_ra']).toBe('0');
  });

  it('per peer: an onlink IPv6 route, a permanent neighbour with the peer v6 VTEP MAC, an FDB entry to the peer IPv6 address', () => {
    const b = ns('node1').batch;
    const route = indexOf(b, 'route add fd00:10:244:1::/64 via fd00:10:244:1:: dev flannel-v6.1 onlink');
    expect(indexOf(b, 'neigh add fd00:10:244:1:: lladdr 0e:f6:0a:f0:00:05 dev flannel-v6.1 nud permanent')).toBeLessThan(route);
    // Before the node's IPv6 route to the whole pod range via the router: the kernel refuses an onlink
    // IPv6 route whose gateway another device's route covers.
    expect(route).toBeLessThan(indexOf(b, 'route add fd00:10:244::/56 via fd00:10:240::1'));
    expect(ns('node1').bridgeBatch).toEqual(['fdb add 0e:fa:0a:f0:00:05 dev flannel.1 dst 10.240.0.5 self permanent', 'fdb add 0e:f6:0a:f0:00:05 dev flannel-v6.1 dst fd00:10:240::5 self permanent']);
  });

  it('the pods keep flannel MTU 1450; the IPv6 device is the kernel cap, the underlay less 70, on any network MTU', () => {
    expect(plan.podNetwork.podMtu).toBe(1450);
    const small = planIn('vxlan', { 'networks.nodes.mtu': '1400' });
    expect(small.ns('node1').batch).toContain('link add flannel-v6.1 address 0e:f6:0a:f0:00:04 mtu 1330 type vxlan id 1 local fd00:10:240::4 dev eth0 dstport 8472 nolearning');
  });

  it('refuses a network MTU that leaves IPv6 pods less than 1280', () => {
    const problems = problemsOf(() => loadTopology('dualstack', { 'podNetwork.mode': 'vxlan', 'networks.nodes.mtu': '1300' }));
    expect(problems).toEqual([expect.objectContaining({ field: 'networks[0].mtu', message: expect.stringContaining('IPv6 needs at least 1280, so the MTU must be at least 1330') })]);
  });

  it('the router carries no pod-CIDR route of either family', () => {
    expect(ns('router').batch.filter((l) => l.startsWith('route add') && /10\.244\.|fd00:10:244:/.test(l))).toEqual([]);
  });
});

describe('bgp over IPv6 (MP-BGP: an ipv6 channel on each node session)', () => {
  const { plan, ns } = planIn('bgp');
  const config = (host: string) => plan.podNetwork.daemons.find((d) => d.host === host)!.files[0]!.content;

  it('each node announces its podCIDR6 beside its podCIDR, over the same session, its IPv6 address the next hop', () => {
    const node2 = config('node2');
    expect(node2).toMatch(/protocol static announced6 \{\n {2}ipv6;\n {2}route fd00:10:244:1::\/64 blackhole;\n\}/);
    expect(node2).toMatch(/ {2}ipv6 \{\n {4}import none;\n {4}export where proto = "announced6";\n {4}next hop address fd00:10:240::5;\n {2}\};/);
    expect(node2.match(/^protocol bgp /gm)).toHaveLength(1);
    expect(node2).not.toContain('fd00:10:244::/64');
  });

  it('the router imports both families and installs them with one kernel protocol each; up waits for the IPv6 routes too', () => {
    const router = config('router');
    expect(router).toContain('  ipv6 { import none; export where source = RTS_BGP; };');
    expect(router).toContain('  ipv4 { import none; export where source = RTS_BGP; };');
    expect(router.match(/ {2}ipv6 \{\n {4}import all;\n {4}export none;\n {2}\};/g)).toHaveLength(2);
    expect(router).not.toContain('next hop address');
    expect(plan.podNetwork.daemons.find((d) => d.host === 'router')!.ready.routes).toEqual(['10.244.0.0/24', 'fd00:10:244::/64', '10.244.1.0/24', 'fd00:10:244:1::/64']);
    expect(ns('router').batch.filter((l) => l.startsWith('route add') && /10\.244\.|fd00:10:244:/.test(l))).toEqual([]);
  });

  it('an IPv4-only cluster gets no ipv6 channel', () => {
    const v4 = planLab(loadTopology('nodeport', { 'podNetwork.mode': 'bgp' }).topology);
    for (const d of v4.podNetwork.daemons) expect(d.files[0]!.content).not.toMatch(/ipv6|announced6/);
  });

  it.skipIf(spawnSync('bird', ['--version']).status !== 0)('bird -p parses every configuration', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lab-bird6-'));
    try {
      for (const d of plan.podNetwork.daemons) {
        const file = join(dir, `${d.host}.conf`);
        writeFileSync(file, d.files[0]!.content);
        const r = spawnSync('bird', ['-p', '-c', file], { encoding: 'utf8' });
        expect(r.status, `${d.host}: ${r.stdout}${r.stderr}`).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
