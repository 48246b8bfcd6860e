import { afterAll, describe, expect, it } from 'vitest';
import type { HealthReport } from '../../lab/workshop/health.js';
import { lab, namespaces, requireRoot } from './helpers.js';
import { verifiedSteps } from './pod-network-runs.js';
import { watch } from './tcpdump-watch.js';

/**
 * Issue 21: every pod network mode carries a dual-stack cluster's IPv6 (docs/dualstack.md,
 * docs/pod-network.md). In host-gw, vxlan and bgp, in both kube-proxy modes: `lab up dualstack`
 * in the mode, its walkthrough passes, and a cross-node IPv6 connection (pod to pod, and the
 * client's through the NodePort) goes the mode's way on node1's eth0: host-gw in a frame to
 * node2's MAC; vxlan as UDP between the nodes' IPv6 addresses to port 8472, VNI 1, the pod packet
 * inside between flannel-v6.1's VTEP MACs; bgp to the router, whose IPv6 route was learned from
 * node2's BIRD (proto bird). The workshop's pod network check and `lab break pod-route-gone`
 * (IPv4) keep working in the mode.
 */
const root = requireRoot();
const NAME = 'dsp';
const env = { NO_COLOR: '1', COLUMNS: '200' };

const inNs = async (host: string, cmd: string[]) => {
  const r = await lab(['exec', NAME, host, '--', ...cmd]);
  expect(r.exitCode, r.stderr).toBe(0);
  return r.stdout;
};
const macOf = async (host: string, ifname: string) => (JSON.parse(await inNs(host, ['ip', '-j', 'link', 'show', ifname])) as { address: string }[])[0]!.address;

/** What the mode leaves in the kernel for IPv6, and what node1's eth0 shows of a cross-node IPv6 SYN (tcpdump -e lines). */
const MODES = {
  'host-gw': {
    async kernel() {
      expect(await inNs('node1', ['ip', '-6', 'route', 'show', 'exact', 'fd00:10:244:1::/64'])).toMatch(/^fd00:10:244:1::\/64 via fd00:10:240::5 dev eth0 /);
      expect(await inNs('router', ['ip', '-6', 'route', 'show', 'exact', 'fd00:10:244:1::/64'])).toBe('');
    },
    // Straight to node2's MAC: the router only switches the frame.
    wire: async (from: string) => new RegExp(`> ${await macOf('node2', 'eth0')}, ethertype IPv6 \\(0x86dd\\), length \\d+: ${from}\\.\\d+ > fd00:10:244:1::2\\.8443: Flags \\[S\\]`),
    masqueradedTo: 'fd00:10:240::4',
  },
  vxlan: {
    async kernel() {
      const link = await inNs('node1', ['ip', '-d', 'link', 'show', 'flannel-v6.1']);
      expect(link).toMatch(/mtu 1430 /);
      expect(link).toMatch(/vxlan id 1 local fd00:10:240::4 dev eth0 .*dstport 8472 nolearning/);
      expect(await inNs('node1', ['ip', '-6', 'neigh', 'show', 'dev', 'flannel-v6.1'])).toContain('fd00:10:244:1:: lladdr 0e:f6:0a:f0:00:05 PERMANENT');
      expect(await inNs('node1', ['bridge', 'fdb', 'show', 'dev', 'flannel-v6.1'])).toContain('0e:f6:0a:f0:00:05 dst fd00:10:240::5 self permanent');
      expect(await inNs('router', ['ip', '-6', 'route', 'show', 'exact', 'fd00:10:244:1::/64'])).toBe('');
    },
    // The outer IPv6 UDP datagram to node2:8472 (tcpdump -T vxlan decodes it), the pod packet inside between the v6 VTEPs.
    wire: async (from: string) => new RegExp(`fd00:10:240::4\\.\\d+ > fd00:10:240::5\\.8472: VXLAN, flags \\[I\\] \\(0x08\\), vni 1\\n0e:f6:0a:f0:00:04 > 0e:f6:0a:f0:00:05, ethertype IPv6 \\(0x86dd\\), length \\d+: ${from}\\.\\d+ > fd00:10:244:1::2\\.8443: Flags \\[S\\]`),
    // MASQUERADE picks the address of the device the packet leaves by: flannel-v6.1's, as flannel.1's in IPv4.
    masqueradedTo: 'fd00:10:244::',
  },
  bgp: {
    async kernel() {
      const exact = (family: string, cidr: string) => inNs('router', ['ip', family, 'route', 'show', 'exact', cidr]);
      expect(await exact('-6', 'fd00:10:244:1::/64')).toMatch(/^fd00:10:244:1::\/64 via fd00:10:240::5 dev br-nodes proto bird /);
      expect(await exact('-6', 'fd00:10:244::/64')).toMatch(/^fd00:10:244::\/64 via fd00:10:240::4 dev br-nodes proto bird /);
      expect(await exact('-4', '10.244.1.0/24')).toMatch(/^10\.244\.1\.0\/24 via 10\.240\.0\.5 dev br-nodes proto bird /);
    },
    // To the router's MAC: it routes by what its BIRD learned.
    wire: async (from: string) => new RegExp(`> ${await macOf('router', 'br-nodes')}, ethertype IPv6 \\(0x86dd\\), length \\d+: ${from}\\.\\d+ > fd00:10:244:1::2\\.8443: Flags \\[S\\]`),
    masqueradedTo: 'fd00:10:240::4',
  },
} as const;

describe.skipIf(!root)('dual-stack in every pod network mode, against the real kernel', () => {
  afterAll(async () => {
    await lab(['down', NAME]);
    expect((await namespaces()).filter((n) => n.startsWith(`${NAME}-`))).toEqual([]);
  });

  for (const [mode, m] of Object.entries(MODES)) {
    for (const proxy of ['iptables', 'nftables'] as const) {
      it(`${mode}, kube-proxy ${proxy}: up, verify, the IPv6 routes or devices, cross-node IPv6 on the wire the mode's way`, async () => {
        await lab(['down', NAME]);
        const up = await lab(['up', 'dualstack', '--name', NAME, '--set', `podNetwork.mode=${mode}`, '--set', `kubeProxy.mode=${proxy}`]);
        expect(up.exitCode, up.stderr).toBe(0);
        expect((await verifiedSteps(NAME)).length).toBeGreaterThan(0);
        await m.kernel();

        const args = mode === 'vxlan' ? ['-e', '-T', 'vxlan', 'ip6 and udp port 8472'] : ['-e', 'ip6 and tcp port 8443'];
        const eth0 = await watch(`${NAME}-node1`, 'eth0', args);
        let nodePortClient = '';
        try {
          // Pod to pod across the nodes: no NAT, web-2 sees web-1's own IPv6 address.
          const direct = JSON.parse(await inNs('web-1', ['curl', '-s', '-m', '5', 'http://[fd00:10:244:1::2]:8443/'])) as { pod: string; client: string };
          expect(direct).toMatchObject({ pod: 'web-2', client: expect.stringMatching(/^\[fd00:10:244::3\]:\d+$/) });
          // The client through node1's IPv6 NodePort until web-2 (on node2) answers: DNAT, masquerade, across.
          for (let i = 0; i < 60 && !nodePortClient; i++) {
            const answer = JSON.parse(await inNs('client', ['curl', '-s', '-m', '5', 'http://[fd00:10:240::4]:32000/'])) as { pod: string; client: string };
            if (answer.pod === 'web-2') nodePortClient = answer.client;
          }
        } finally {
          await eth0.stop();
        }
        expect(nodePortClient).toMatch(new RegExp(`^\\[${m.masqueradedTo}\\]:\\d+$`));
        const text = eth0.lines.join('\n');
        expect(text).toMatch(await m.wire('fd00:10:244::3'));
        expect(text).toMatch(await m.wire(m.masqueradedTo));

        // The workshop's pod network check (IPv4) passes; pod-route-gone breaks it, lab repair mends it.
        const health = async () => (JSON.parse((await lab(['workshop', NAME, '--check', '--json'], { env, timeout: 60_000 })).stdout) as HealthReport).checks.find((x) => x.name === `pod network (${mode})`);
        expect((await health())?.ok).toBe(true);
        const b = await lab(['break', NAME, 'pod-route-gone'], { env });
        expect(b.exitCode, b.stderr).toBe(0);
        expect((await health())?.ok).toBe(false);
        if (mode === 'bgp') {
          // The session disabled: its IPv6 route went with the IPv4 one (learned over the same session).
          expect(await inNs('router', ['ip', '-6', 'route', 'show', 'exact', 'fd00:10:244:1::/64'])).toBe('');
        }
        const r = await lab(['repair', NAME], { env });
        expect(r.exitCode, r.stderr).toBe(0);
        expect((await health())?.ok).toBe(true);
        expect((await lab(['down', NAME])).exitCode).toBe(0);
      }, 300_000);
    }
  }
});
