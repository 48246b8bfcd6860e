import { describe, expect, it } from 'vitest';
import { lab, requireRoot, skippedAnswers, workshopLabs, type WorkshopCase } from './helpers.js';
import type { HealthReport } from '../../lab/workshop/health.js';

/**
 * Every workshop in kube-proxy's nftables mode, and the nodeport workshop in each pod-network
 * mode, against live labs: a skip through reads every step's answer from the lab (and the
 * mode-specific ones are what kube-proxy / flannel / BIRD really write, given here literally),
 * a learner typing those answers on stdin gets every step right at the first try, and
 * `lab workshop --check` finds the lab healthy.
 */

const root = requireRoot();

interface Case extends WorkshopCase {
  /** Step ids the mode adds (must be asked) or drops (must not be). */
  asked?: string[];
  notAsked?: string[];
  /** A hand-made fault in the mode's pod network (run in a node), and what --check must then say. */
  fault?: { host: string; cmd: string[]; says: RegExp };
}

const NFT = ['--set', 'kubeProxy.mode=nftables'];
const SVC = 'service-PET3V2EF-default/web/tcp/https';
const EXT = 'external-PET3V2EF-default/web/tcp/https';
const LOCAL = 'local-PET3V2EF-default/web/tcp/https';

const cases: Case[] = [
  {
    scenario: 'nodeport',
    name: 'wsm-np',
    set: NFT,
    from: 'client',
    to: '10.240.0.4:32000',
    expected: { 'nodeport-rule': EXT, 'service-chain': SVC, probability: '2', 'snat-cross-node': '10.240.0.4', 'route-out': 'eth0', 'localhost-nodeport': '10.240.0.4' },
    notAsked: ['vxlan-neighbour', 'vxlan-fdb', 'bgp-next-hop'],
  },
  { scenario: 'clusterip', name: 'wsm-cip', set: NFT, from: 'frontend', to: '172.31.0.5:443', expected: { 'service-rule': SVC, 'masquerade-exception': '10.244.0.0/16', distribution: '2' } },
  {
    scenario: 'internal-local',
    name: 'wsm-itp',
    set: NFT,
    from: 'frontend',
    to: '172.31.0.5:443',
    expected: { 'clusterip-rule': LOCAL, 'one-endpoint': '1', 'nodeport-chain': SVC },
  },
  {
    scenario: 'affinity',
    name: 'wsm-aff',
    set: NFT,
    from: 'client',
    to: '10.240.0.4:32000',
    expected: { 'svc-rules': '2', 'remember-seconds': '10800', 'list-name': 'affinity-35L7OA2E-default/web/tcp/https__10.244.0.3/8443' },
  },
  {
    scenario: 'lb-source-ranges',
    name: 'wsm-lsr',
    set: NFT,
    from: 'client',
    to: '10.240.0.100:443',
    expected: { 'lb-rule': 'firewall-PET3V2EF-default/web/tcp/https', 'allowed-range': '10.241.0.0/28', 'external-ip': EXT },
  },
  { scenario: 'loadbalancer-local', name: 'wsm-lbl', set: NFT, from: 'client', to: '10.240.0.100:443', expected: { 'ext-last-jump': LOCAL, 'health-port': '1' } },
  { scenario: 'loadbalancer', name: 'wsm-lb', set: NFT, from: 'client', to: '10.240.0.100:443', expected: { 'lb-rule': EXT } },
  { scenario: 'nodeport-local', name: 'wsm-etp', set: NFT, from: 'client', to: '10.240.0.4:32000', expected: { 'ext-last-jump': LOCAL, 'svl-endpoints': '1' } },
  // The multi-homed node: the same answers in both proxy modes (routes, captures, a concept).
  ...[[], NFT].map((set) => ({
    scenario: 'nodeport-multihomed',
    name: set.length ? 'wsm-mh-nft' : 'wsm-mh',
    set,
    from: 'client',
    to: '10.240.0.4:32000',
    expected: { 'client-route': '10.241.0.1', 'syn-in': '10.240.0.4:32000', 'route-back': 'eth1', 'reply-out': '10.240.0.4:32000', 'rp-filter': '1' },
  })),
  {
    scenario: 'nodeport',
    name: 'wsm-vx',
    set: ['--set', 'podNetwork.mode=vxlan'],
    from: 'client',
    to: '10.240.0.4:32000',
    expected: {
      'nodeport-rule': 'KUBE-EXT-54WW65JLHZHRV7HC',
      'snat-cross-node': '10.244.0.0', // flannel.1's address: MASQUERADE takes the egress device's
      'route-out': 'flannel.1',
      'vxlan-neighbour': '0e:fa:0a:f0:00:05',
      'vxlan-fdb': '10.240.0.5',
      'arrives-node2': '10.240.0.5:8472', // the outer header
    },
    asked: ['vxlan-neighbour', 'vxlan-fdb'],
    notAsked: ['bgp-next-hop'],
    fault: { host: 'node1', cmd: ['bridge', 'fdb', 'del', '0e:fa:0a:f0:00:05', 'dev', 'flannel.1', 'dst', '10.240.0.5', 'self'], says: /node1's FDB on flannel.1 does not send 0e:fa:0a:f0:00:05 to 10.240.0.5/ },
  },
  {
    scenario: 'nodeport',
    name: 'wsm-bgp',
    set: ['--set', 'podNetwork.mode=bgp', ...NFT],
    from: 'client',
    to: '10.240.0.4:32000',
    expected: { 'nodeport-rule': EXT, 'route-out': 'bird', 'bgp-next-hop': '10.240.0.5', 'arrives-node2': '10.244.1.2:8443' },
    asked: ['bgp-next-hop'],
    notAsked: ['vxlan-neighbour', 'vxlan-fdb'],
  },
  {
    scenario: 'nodeport',
    name: 'wsm-hgw',
    set: ['--set', 'podNetwork.mode=host-gw'],
    from: 'client',
    to: '10.240.0.4:32000',
    expected: { 'route-out': '10.240.0.5', 'arrives-node2': '10.244.1.2:8443' },
    notAsked: ['vxlan-neighbour', 'vxlan-fdb', 'bgp-next-hop'],
    fault: { host: 'node2', cmd: ['ip', 'route', 'del', '10.244.0.0/24'], says: /node2 routes 10\.244\.0\.0\/24 via 10\.240\.0\.1 .*not via 10\.240\.0\.4/ },
  },
];

describe.skipIf(!root)('workshops in every proxy and pod-network mode, against live labs', () => {
  const { env } = workshopLabs('wsm-e2e-', cases.map((c) => c.name));

  for (const c of cases) {
    it(`${c.scenario} ${c.set.filter((a) => a !== '--set').join(' ')}: the mode's questions read the live lab, right answers on stdin finish it, --check passes`, async () => {
      const up = await lab(['up', c.scenario, '--name', c.name, ...c.set]);
      expect(up.exitCode, up.stderr).toBe(0);
      const listed = JSON.parse((await lab(['workshop', c.name, '--list', '--json'], { env: env() })).stdout) as { steps: { id: string }[] };
      const ids = listed.steps.map((s) => s.id);
      for (const id of [...Object.keys(c.expected), ...(c.asked ?? [])]) expect(ids).toContain(id);
      for (const id of c.notAsked ?? []) expect(ids).not.toContain(id);
      const n = ids.length;

      // The learner's own request, then a skip through: every step has a live answer.
      expect((await lab(['exec', c.name, c.from, '--', 'curl', '-s', '--max-time', '5', c.to])).exitCode).toBe(0);
      const skipped = await lab(['workshop', c.name], { input: 'skip\n'.repeat(n), env: env(), timeout: 150_000 });
      expect(skipped.exitCode, skipped.stderr).toBe(0);
      expect(skipped.stdout).not.toContain('could not read');
      const answers = skippedAnswers(skipped.stdout);
      expect(answers, skipped.stdout).toHaveLength(n);
      for (const [id, want] of Object.entries(c.expected)) expect(answers[ids.indexOf(id)], id).toBe(want);

      // A learner who types them: every step right at the first try.
      const r = await lab(['workshop', c.name, '--reset'], { input: answers.map((a) => `${a}\n`).join(''), env: env(), timeout: 150_000 });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout, r.stdout).toContain(`Workshop complete. ${n} of ${n} answered (${n} at the first try), 0 skipped.`);
      expect(r.stdout).not.toContain('cannot check yet');

      const check = await lab(['workshop', c.name, '--check', '--json']);
      expect(check.exitCode, check.stdout).toBe(0);
      const report = JSON.parse(check.stdout) as HealthReport;
      expect(report.healthy, check.stdout).toBe(true);
      const mode = c.set.find((a) => a.startsWith('podNetwork.mode='))?.split('=')[1] ?? 'routed';
      expect(report.checks.find((x) => x.name === `pod network (${mode})`)?.ok, check.stdout).toBe(true);
      if (c.fault) {
        expect((await lab(['exec', c.name, c.fault.host, '--', ...c.fault.cmd])).exitCode).toBe(0);
        const broken = await lab(['workshop', c.name, '--check', '--json']);
        expect(broken.exitCode, broken.stdout).toBe(1);
        const net = (JSON.parse(broken.stdout) as HealthReport).checks.find((x) => x.name === `pod network (${mode})`);
        expect(net?.ok).toBe(false);
        expect(net?.detail).toMatch(c.fault.says);
      }
      expect((await lab(['down', c.name])).exitCode).toBe(0);
    });
  }
});
