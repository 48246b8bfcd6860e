import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab, requireRoot } from './helpers.js';

const lbLocal = (mode: string) => `lbl-${mode.slice(0, 3)}`;

/**
 * Service features beyond the seeds, in both proxy modes against the real kernel:
 * loadBalancerSourceRanges (a client outside them dropped before any translation) and an
 * external IP (topologies/lb-source-ranges.yaml and its walkthrough); the health check node port
 * of a Local LoadBalancer, which the load balancer follows (topologies/loadbalancer-local.yaml).
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
    for (const m of MODES) await Promise.all([lab(['down', name(m)]), lab(['down', lbLocal(m)])]);
  });
  afterAll(async () => {
    for (const m of MODES) await Promise.all([lab(['down', name(m)]), lab(['down', lbLocal(m)])]);
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

  /** The load balancer's next hops for 10.240.0.100, once they equal `want` (the checker's readiness), or the last seen after 5 s. */
  async function waitForRoute(labName: string, want: string[]): Promise<string[]> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const out = (await lab(['exec', labName, 'router', '--', 'ip', '-j', 'route', 'show', '10.240.0.100'])).stdout;
      const r = (JSON.parse(out || '[]') as { gateway?: string; nexthops?: { gateway: string }[] }[])[0];
      const hops = (r?.nexthops?.map((h) => h.gateway) ?? (r?.gateway ? [r.gateway] : [])).sort();
      if (JSON.stringify(hops) === JSON.stringify(want) || Date.now() > deadline) return hops;
    }
  }

  for (const mode of MODES) {
    it(`${mode} mode: the health check node port answers 503 on a node without a local pod, and the load balancer leaves that node out`, async () => {
      const l = lbLocal(mode);
      const up = await lab(['up', 'loadbalancer-local', '--name', l, '--set', `kubeProxy.mode=${mode}`, '--set', 'pods.web-2.ready=false']);
      expect(up.exitCode, up.stderr).toBe(0);
      const health = async (ip: string) => (await lab(['exec', l, 'client', '--', 'curl', '-s', '-w', ' %{http_code}', `${ip}:32100`])).stdout;
      expect(await health('10.240.0.5')).toMatch(/"localEndpoints":0[\s\S]* 503$/);
      expect(await health('10.240.0.4')).toMatch(/"localEndpoints":1[\s\S]* 200$/);
      expect(await waitForRoute(l, ['10.240.0.4'])).toEqual(['10.240.0.4']);
      const v = await lab(['verify', l, '--walkthrough', 'loadbalancer-local-unready', '--json']);
      expect(v.exitCode, v.stdout.slice(0, 3000)).toBe(0);

      // web-2 ready again: node2's health check passes, the load balancer sends to it again.
      expect((await lab(['revive', l, 'web-2'])).exitCode).toBe(0);
      expect(await health('10.240.0.5')).toMatch(/"localEndpoints":1[\s\S]* 200$/);
      expect(await waitForRoute(l, ['10.240.0.4', '10.240.0.5'])).toEqual(['10.240.0.4', '10.240.0.5']);
      const both = await lab(['verify', l, '--json']);
      expect(both.exitCode, both.stdout.slice(0, 3000)).toBe(0);
      await lab(['down', l]);
    });
  }
});
