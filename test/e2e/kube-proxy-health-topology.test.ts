import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab, requireRoot } from './helpers.js';

/**
 * Against the real kernel, in both proxy modes:
 * - kube-proxy's own /healthz and /livez on port 10256 of every node, curled from a lab namespace:
 *   200 with nodeEligible true, and /healthz 503 with nodeEligible false on a node being deleted
 *   (nodes[].deleting) while its /livez stays 200; the static load balancer following /healthz
 *   (loadBalancer.proxyHealthz) for an externalTrafficPolicy Cluster Service takes that node out
 *   of its route, and new connections no longer enter there.
 * - trafficDistribution PreferClose (topologies/traffic-distribution.yaml): each zone's frontend
 *   stays in its zone, and after `lab kill` of zone-a's pod node1 falls back to every endpoint
 *   while node2 keeps its own (both walkthroughs pass; the nodes' rules differ).
 */

const root = requireRoot();
const MODES = ['iptables', 'nftables'] as const;
const tag = (mode: string) => mode.slice(0, 3);

interface Report { passed: number; paths: { steps: { title: string; status: string }[] }[] }

async function verifyPasses(labName: string, walkthrough?: string): Promise<void> {
  const v = await lab(['verify', labName, '--json', ...(walkthrough ? ['--walkthrough', walkthrough] : [])], { timeout: 120_000 });
  const report = JSON.parse(v.stdout) as Report;
  const failed = report.paths.flatMap((p) => p.steps).filter((s) => s.status === 'fail');
  expect(failed, JSON.stringify(failed, null, 2)).toEqual([]);
  expect(v.exitCode).toBe(0);
  expect(report.passed).toBeGreaterThan(0);
}

/** curl from a host of the lab: status code and body. */
async function curl(labName: string, from: string, url: string): Promise<{ status: number; body: string; headers: string }> {
  const r = await lab(['exec', labName, from, '--', 'curl', '-s', '-i', '-m', '3', url]);
  expect(r.exitCode, r.stderr).toBe(0);
  const [head, body = ''] = r.stdout.split(/\r?\n\r?\n/);
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(head!)?.[1]), body, headers: head! };
}

/** The KUBE-SVC / service-… chain's endpoints on a node, read from the kernel. */
async function endpointsInRules(labName: string, node: string, mode: string): Promise<string[]> {
  const r = await lab(['rules', labName, node]);
  expect(r.exitCode, r.stderr).toBe(0);
  const found = mode === 'iptables' ? [...r.stdout.matchAll(/-A KUBE-SVC-\S+ .*--comment "default\/web:https -> ([\d.:]+)"/g)] : [...r.stdout.matchAll(/endpoint-\w+-default\/web\/tcp\/https__([\d.]+)\/(\d+)/g)].map((m) => [m[0], `${m[1]}:${m[2]}`]);
  return [...new Set(found.map((m) => m[1]!))].sort();
}

describe.skipIf(!root)("kube-proxy's own health and trafficDistribution against the real kernel", () => {
  const labs = MODES.flatMap((m) => [`kph-lb-${tag(m)}`, `kph-td-${tag(m)}`]);
  beforeAll(async () => {
    for (const l of labs) await lab(['down', l]);
  });
  afterAll(async () => {
    for (const l of labs) await lab(['down', l]);
  });

  for (const mode of MODES) {
    it(`${mode}: /healthz and /livez on every node; a node being deleted answers 503 and the load balancer following /healthz leaves it`, async () => {
      const L = `kph-lb-${tag(mode)}`;
      const up = await lab(['up', 'loadbalancer', '--name', L, '--json', '--set', `kubeProxy.mode=${mode}`, '--set', 'loadBalancer.proxyHealthz=true', '--set', 'nodes.node2.deleting=true']);
      expect(up.exitCode, up.stderr.slice(-1500)).toBe(0);
      const result = JSON.parse(up.stdout) as { loadBalancers: { to: string; port: number; via: string[]; settled: boolean }[] };
      expect(result.loadBalancers).toEqual([expect.objectContaining({ to: '10.240.0.100/32', port: 10256, via: ['10.240.0.4'], settled: true })]);

      const n1 = await curl(L, 'client', 'http://10.240.0.4:10256/healthz');
      expect(n1.status).toBe(200);
      expect(n1.headers).toMatch(/Content-Type: application\/json/i);
      expect(n1.headers).toMatch(/X-Content-Type-Options: nosniff/i);
      expect(JSON.parse(n1.body)).toMatchObject({ nodeEligible: true });
      expect(n1.body).toMatch(/^\{"lastUpdated": "\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC m=\+\d+\.\d{9}","currentTime": "[^"]+", "nodeEligible": true\}$/);
      const n2 = await curl(L, 'client', 'http://10.240.0.5:10256/healthz');
      expect(n2.status).toBe(503);
      expect(JSON.parse(n2.body)).toMatchObject({ nodeEligible: false });
      for (const ip of ['10.240.0.4', '10.240.0.5']) {
        const live = await curl(L, 'client', `http://${ip}:10256/livez`);
        expect(live.status, ip).toBe(200);
        expect(Object.keys(JSON.parse(live.body) as object)).toEqual(['lastUpdated', 'currentTime']);
      }
      expect((await curl(L, 'client', 'http://10.240.0.4:10256/metrics')).status).toBe(404);
      // From inside the node too (pods and the kubelet's probes ask there).
      expect((await curl(L, 'web-2', 'http://10.240.0.5:10256/livez')).status).toBe(200);

      // The router's route to the LB IP, as the load balancer's probes left it: node1 only.
      const route = await lab(['exec', L, 'router', '--', 'ip', 'route', 'show', '10.240.0.100']);
      expect(route.stdout.trim()).toMatch(/^10\.240\.0\.100 via 10\.240\.0\.4 dev br-nodes/);
      // New connections to the LB IP all enter node1: node2's conntrack has none of them.
      const probe = await lab(['probe', L, '-n', '10', '--json']);
      expect(probe.exitCode, probe.stderr).toBe(0);
      const ct2 = await lab(['conntrack', L, 'node2', '--all']);
      expect(ct2.stdout).not.toContain('10.240.0.100');
      const ct1 = await lab(['conntrack', L, 'node1', '--all']);
      expect(ct1.stdout).toContain('10.240.0.100');
      // A sync (kill/revive) keeps the servers and moves lastUpdated on.
      expect((await lab(['kill', L, 'web-1'])).exitCode).toBe(0);
      expect((await curl(L, 'client', 'http://10.240.0.4:10256/healthz')).status).toBe(200);
      expect((await curl(L, 'client', 'http://10.240.0.5:10256/healthz')).status).toBe(503);
      await lab(['down', L]);
    }, 180_000);

    it(`${mode}: trafficDistribution PreferClose keeps each zone's traffic in its zone, and zone-a falls back when its pod is killed`, async () => {
      const L = `kph-td-${tag(mode)}`;
      const up = await lab(['up', 'traffic-distribution', '--name', L, '--set', `kubeProxy.mode=${mode}`]);
      expect(up.exitCode, up.stderr.slice(-1500)).toBe(0);
      expect(await endpointsInRules(L, 'node1', mode)).toEqual(['10.244.0.3:8443']);
      expect(await endpointsInRules(L, 'node2', mode)).toEqual(['10.244.1.2:8443']);
      expect(await endpointsInRules(L, 'node3', mode)).toEqual(['10.244.2.2:8443']);
      await verifyPasses(L);

      const kill = await lab(['kill', L, 'web-1']);
      expect(kill.exitCode, kill.stderr).toBe(0);
      expect(await endpointsInRules(L, 'node1', mode)).toEqual(['10.244.1.2:8443', '10.244.2.2:8443']);
      expect(await endpointsInRules(L, 'node2', mode)).toEqual(['10.244.1.2:8443']);
      await verifyPasses(L, 'traffic-distribution-fallback');

      const revive = await lab(['revive', L, 'web-1']);
      expect(revive.exitCode, revive.stderr).toBe(0);
      expect(await endpointsInRules(L, 'node1', mode)).toEqual(['10.244.0.3:8443']);
      await lab(['down', L]);
    }, 240_000);
  }
});
