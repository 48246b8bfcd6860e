import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab, requireRoot, sh } from './helpers.js';

/**
 * Every scenario (and the unready variants) in kube-proxy's nftables mode against the real
 * kernel: one `nft -f` per node, the same walkthroughs as iptables mode, resyncs on scale and
 * kill, and what nftables mode does not do (localhost NodePorts). The iptables-mode runs of the
 * same walkthroughs are the other e2e files.
 */

const root = requireRoot();
const NFT = ['--set', 'kubeProxy.mode=nftables'];
// Lab names of their own, so no other file's lab (or its process count) is touched.
const RUNS: { name: string; scenario: string; set?: string[]; walkthrough?: string }[] = [
  { name: 'nft-np', scenario: 'nodeport' },
  { name: 'nft-cip', scenario: 'clusterip' },
  { name: 'nft-lb', scenario: 'loadbalancer' },
  { name: 'nft-etp', scenario: 'nodeport-local' },
  { name: 'nft-etp-unready', scenario: 'nodeport-local', set: ['--set', 'pods.web-2.ready=false'], walkthrough: 'nodeport-local-unready' },
  { name: 'nft-itp', scenario: 'internal-local' },
  { name: 'nft-itp-unready', scenario: 'internal-local', set: ['--set', 'pods.web-2.ready=false'], walkthrough: 'internal-local-unready' },
  { name: 'nft-aff', scenario: 'affinity' },
  { name: 'nft-lbl', scenario: 'loadbalancer-local' },
  { name: 'nft-lbl-unready', scenario: 'loadbalancer-local', set: ['--set', 'pods.web-2.ready=false'], walkthrough: 'loadbalancer-local-unready' },
  { name: 'nft-aff-to', scenario: 'affinity', set: ['--set', 'services.web.sessionAffinityTimeoutSeconds=3'], walkthrough: 'affinity-timeout' },
  { name: 'nft-etp-term', scenario: 'nodeport-local', set: ['--set', 'pods.web-2.terminating=true'], walkthrough: 'nodeport-local-terminating' },
];

interface Report {
  failed: number;
  passed: number;
  paths: { steps: { step: string; title: string; status: string; seen: string }[] }[];
}

describe.skipIf(!root)('nftables mode against the real kernel', () => {
  beforeAll(async () => {
    for (const r of RUNS) await lab(['down', r.name]);
  });
  afterAll(async () => {
    for (const name of [...RUNS.map((r) => r.name), 'ipt-np']) await lab(['down', name]);
  });

  for (const run of RUNS) {
    it(`${run.name}: ${run.scenario}${run.walkthrough ? ` (${run.walkthrough})` : ''} passes its walkthrough`, async () => {
      const up = await lab(['up', run.scenario, '--name', run.name, ...NFT, ...(run.set ?? [])]);
      expect(up.exitCode, up.stderr).toBe(0);
      const v = await lab(['verify', run.name, '--json', ...(run.walkthrough ? ['--walkthrough', run.walkthrough] : [])]);
      const report = JSON.parse(v.stdout) as Report;
      const failed = report.paths.flatMap((p) => p.steps).filter((s) => s.status === 'fail');
      expect(failed, JSON.stringify(failed, null, 2)).toEqual([]);
      expect(v.exitCode).toBe(0);
      expect(report.passed).toBeGreaterThan(0);
      // Where iptables mode reads a DNAT rule's counter, nftables mode names the endpoint chain.
      const dnat = report.paths.flatMap((p) => p.steps).find((s) => s.seen.includes('dnat to'));
      if (run.scenario === 'nodeport') expect(dnat?.seen).toMatch(/endpoint-[A-Z2-7]{8}-default\/web\/tcp\/https__10\.244\.\d\.\d+\/8443: dnat to/);

      // The rules are nftables' own: the kube-proxy table, and no kube-proxy chain in iptables' nat table.
      const rules = await lab(['rules', run.name, 'node1']);
      expect(rules.stdout).toMatch(/^# kube-proxy v1\.34, nftables mode/);
      expect(rules.stdout).toContain('table ip kube-proxy {');
      expect(await sh('ip', ['netns', 'exec', `${run.name}-node1`, 'iptables-save', '-t', 'nat'])).not.toContain('KUBE-');
      await lab(['down', run.name]);
    });
  }

  it('scale and kill resync every node with one nft transaction; stale endpoint chains go', async () => {
    expect((await lab(['up', 'nodeport', '--name', 'nft-np', ...NFT])).exitCode).toBe(0);
    const scaled = await lab(['scale', 'nft-np', 'web=3']);
    expect(scaled.exitCode, scaled.stderr).toBe(0);
    expect(scaled.stdout).toContain('one nft -f transaction per node');
    expect(scaled.stdout).toMatch(/\+endpoint-[A-Z2-7]{8}-default\/web\/tcp\/https__10\.244\.\d\.\d+\/8443/);
    expect((await lab(['rules', 'nft-np', 'node2'])).stdout).toContain('numgen random mod 3 vmap');

    const killed = await lab(['kill', 'nft-np', 'web-2']);
    expect(killed.exitCode, killed.stderr).toBe(0);
    const after = (await lab(['rules', 'nft-np', 'node1'])).stdout;
    expect(after).toContain('numgen random mod 2 vmap');
    expect(after).not.toContain('__10.244.1.2/8443');
    const probe = await lab(['probe', 'nft-np', '-n', '10']);
    expect(probe.exitCode, probe.stderr).toBe(0);
    expect(probe.stdout).not.toMatch(/web-2\s+\d/);
    await lab(['down', 'nft-np']);
  });

  it('localhost NodePorts: answered in iptables mode (route_localnet, KUBE-FIREWALL), not supported in nftables mode', async () => {
    const curl = (name: string) => lab(['exec', name, 'node1', '--', 'curl', '-s', '-m', '1', '127.0.0.1:32000']);
    expect((await lab(['up', 'nodeport', '--name', 'nft-np', ...NFT])).exitCode).toBe(0);
    expect((await curl('nft-np')).exitCode).not.toBe(0);
    expect((await lab(['exec', 'nft-np', 'node1', '--', 'curl', '-s', '-m', '1', '10.240.0.4:32000'])).exitCode).toBe(0);
    await lab(['down', 'nft-np']);

    expect((await lab(['up', 'nodeport', '--name', 'ipt-np'])).exitCode).toBe(0);
    const r = await curl('ipt-np');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('"pod":"web-');
    expect((await lab(['exec', 'ipt-np', 'node1', '--', 'sysctl', '-n', 'net.ipv4.conf.all.route_localnet'])).stdout.trim()).toBe('1');
    expect((await lab(['rules', 'ipt-np', 'node1', '-t', 'filter'])).stdout).toContain('block incoming localnet connections');
    await lab(['down', 'ipt-np']);
  });
});
