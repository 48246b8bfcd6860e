import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab, requireRoot } from './helpers.js';

/**
 * Service features beyond the seeds, in both proxy modes against the real kernel:
 * loadBalancerSourceRanges (a client outside them dropped before any translation) and an
 * external IP (topologies/lb-source-ranges.yaml and its walkthrough).
 */

const root = requireRoot();
const MODES = ['iptables', 'nftables'] as const;
const name = (mode: string) => `lbsr-${mode.slice(0, 3)}`;

interface Report {
  failed: number;
  paths: { name: string; steps: { title: string; status: string; seen: string }[] }[];
}

describe.skipIf(!root)('loadBalancerSourceRanges and externalIPs', () => {
  beforeAll(async () => {
    for (const m of MODES) await lab(['down', name(m)]);
  });
  afterAll(async () => {
    for (const m of MODES) await lab(['down', name(m)]);
  });

  for (const mode of MODES) {
    it(`${mode} mode: the allowed client and the external IP are answered, the outsider is dropped`, async () => {
      const up = await lab(['up', 'lb-source-ranges', '--name', name(mode), '--set', `kubeProxy.mode=${mode}`]);
      expect(up.exitCode, up.stderr).toBe(0);
      const v = await lab(['verify', name(mode), '--json']);
      const report = JSON.parse(v.stdout) as Report;
      const failed = report.paths.flatMap((p) => p.steps).filter((s) => s.status === 'fail');
      expect(failed, JSON.stringify(failed, null, 2)).toEqual([]);
      expect(v.exitCode).toBe(0);
      const dropped = report.paths.find((p) => p.name === 'outside-source-dropped')!.steps[1]!;
      expect(dropped.seen).toMatch(mode === 'iptables' ? /counter \+\d+ \("default\/web:https traffic not accepted by KUBE-FW-54WW65JLHZHRV7HC"\)/ : /@firewall-ips \{ 10\.240\.0\.100 \. tcp \. 443 : goto firewall-PET3V2EF-default\/web\/tcp\/https \}/);

      const rules = (await lab(['rules', name(mode), 'node1'])).stdout;
      // nft prints a one-element anonymous set without braces.
      if (mode === 'nftables') expect(rules).toMatch(/ip saddr != (\{ )?10\.241\.0\.0\/28( \})? drop/);
      else expect(rules).toContain('-A KUBE-SERVICES -d 10.240.0.200/32 -p tcp -m comment --comment "default/web:https external IP"');
      await lab(['down', name(mode)]);
    });
  }
});
