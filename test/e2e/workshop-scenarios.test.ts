import { describe, expect, it } from 'vitest';
import type { HealthReport } from '../../lab/workshop/health.js';
import { lab, requireRoot, skippedAnswers, workshopLabs, type WorkshopCase } from './helpers.js';

/**
 * The workshops of the newer scenarios, dualstack and traffic-distribution, in both proxy modes,
 * against live labs: a skip through reads every step's answer from the lab (given here
 * literally where they are the kernel's: ip6tables' and table ip6's chains, node1's IPv6
 * address seen by web-2, the router's MAC by ARP and NDP, the endpoint counts before and after
 * the fallback), a learner typing those answers on stdin gets every step right at the first try,
 * and `lab workshop --check` finds the lab healthy; a flushed IPv6 Service chain makes it fail,
 * on the line of the IPv6 rules.
 */

const root = requireRoot();
const NFT = ['--set', 'kubeProxy.mode=nftables'];
const EXT_V4 = 'KUBE-EXT-54WW65JLHZHRV7HC';
const EXT_NFT = 'external-PET3V2EF-default/web/tcp/https';
const ROUTER_MAC = '02:00:0a:f0:00:01';

interface Case extends WorkshopCase {
  /** Steps whose commands change the lab (lab kill, lab revive): `run` before the answer. */
  run?: string[];
}

const cases: Case[] = [
  {
    scenario: 'dualstack',
    name: 'wss-ds',
    set: [],
    from: 'client',
    to: '10.240.0.4:32000',
    expected: { 'v4-nodeport-rule': EXT_V4, 'v6-nodeport-rule': EXT_V4, 'v6-cluster-ip': 'fd00:172:31::5', 'v6-masquerade': 'fd00:10:240::4', 'v6-masquerade-rule': 'MASQUERADE', arp: ROUTER_MAC, ndp: ROUTER_MAC, 'ndp-message': 'neighbor solicitation' },
  },
  {
    scenario: 'dualstack',
    name: 'wss-ds-nft',
    set: NFT,
    from: 'client',
    to: '10.240.0.4:32000',
    expected: { 'v4-nodeport-rule': EXT_NFT, 'v6-nodeport-rule': EXT_NFT, 'v6-cluster-ip': 'fd00:172:31::5', 'v6-masquerade': 'fd00:10:240::4', 'v6-masquerade-rule': 'masquerade', ndp: ROUTER_MAC },
  },
  {
    scenario: 'traffic-distribution',
    name: 'wss-td',
    set: [],
    from: 'frontend',
    to: '172.31.0.5:443',
    expected: { 'same-zone': 'web-1', 'zone-rules': '1', 'other-zone': 'web-2', fallback: '2', 'back-home': 'web-1' },
    run: ['fallback', 'back-home'],
  },
  {
    scenario: 'traffic-distribution',
    name: 'wss-td-nft',
    set: NFT,
    from: 'frontend',
    to: '172.31.0.5:443',
    expected: { 'same-zone': 'web-1', 'zone-rules': '1', 'other-zone': 'web-2', fallback: '2', 'back-home': 'web-1' },
    run: ['fallback', 'back-home'],
  },
];

describe.skipIf(!root)('the dualstack and traffic-distribution workshops, both proxy modes, against live labs', () => {
  const { env } = workshopLabs('wss-e2e-', cases.map((c) => c.name));

  for (const c of cases) {
    it(`${c.scenario} ${c.set.join(' ') || 'iptables'}: every answer read from the live lab, right answers finish it, --check passes`, async () => {
      const up = await lab(['up', c.scenario, '--name', c.name, ...c.set]);
      expect(up.exitCode, up.stderr).toBe(0);
      const ids = (JSON.parse((await lab(['workshop', c.name, '--list', '--json'], { env: env() })).stdout) as { steps: { id: string }[] }).steps.map((s) => s.id);
      for (const id of Object.keys(c.expected)) expect(ids).toContain(id);
      const n = ids.length;
      const before = (id: string) => (c.run?.includes(id) ? 'run\n' : '');

      expect((await lab(['exec', c.name, c.from, '--', 'curl', '-s', '--max-time', '5', c.to])).exitCode).toBe(0);
      const skipped = await lab(['workshop', c.name], { input: ids.map((id) => `${before(id)}skip\n`).join(''), env: env(), timeout: 200_000 });
      expect(skipped.exitCode, skipped.stderr).toBe(0);
      expect(skipped.stdout).not.toMatch(/could not read|cannot check yet|look damaged/);
      const answers = skippedAnswers(skipped.stdout);
      expect(answers, skipped.stdout).toHaveLength(n);
      for (const [id, want] of Object.entries(c.expected)) expect(answers[ids.indexOf(id)], id).toBe(want);

      const typed = ids.map((id, i) => `${before(id)}${answers[i]}\n`).join('');
      const r = await lab(['workshop', c.name, '--reset'], { input: typed, env: env(), timeout: 200_000 });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout, r.stdout).toContain(`Workshop complete. ${n} of ${n} answered (${n} at the first try), 0 skipped.`);

      const check = await lab(['workshop', c.name, '--check', '--json']);
      expect(check.exitCode, check.stdout).toBe(0);
      expect((JSON.parse(check.stdout) as HealthReport).healthy).toBe(true);
      if (c.scenario === 'dualstack') {
        // The IPv6 half is checked too: its Service chain flushed, --check fails naming it, on its own line.
        const nft = c.set.length > 0;
        const flush = nft ? ['nft', 'flush', 'chain', 'ip6', 'kube-proxy', 'service-PET3V2EF-default/web/tcp/https'] : ['ip6tables', '-t', 'nat', '-F', 'KUBE-SVC-54WW65JLHZHRV7HC'];
        expect((await lab(['exec', c.name, 'node1', '--', ...flush])).exitCode).toBe(0);
        const broken = await lab(['workshop', c.name, '--check', '--json']);
        expect(broken.exitCode, broken.stdout).toBe(1);
        const checks = (JSON.parse(broken.stdout) as HealthReport).checks;
        expect(checks.find((x) => x.name === 'kube-proxy rules on node1')?.ok).toBe(true);
        const v6 = checks.find((x) => x.name === 'kube-proxy IPv6 rules on node1');
        expect(v6?.ok, broken.stdout).toBe(false);
        expect(v6?.detail).toMatch(nft ? /chain service-PET3V2EF-default\/web\/tcp\/https \(the chain is empty\)/ : /KUBE-SVC-54WW65JLHZHRV7HC/);
      }
      expect((await lab(['down', c.name])).exitCode).toBe(0);
    }, 400_000);
  }
});
