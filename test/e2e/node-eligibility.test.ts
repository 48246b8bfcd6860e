import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab, requireRoot } from './helpers.js';

/**
 * `lab node` on a running lab, against the real kernel, in both proxy modes: marking node2 as
 * being deleted, or tainting it ToBeDeletedByClusterAutoscaler, turns kube-proxy's /healthz on
 * node2:10256 to 503 (nodeEligible false; /livez stays 200) and the static load balancer following
 * /healthz (loadBalancer.proxyHealthz) takes node2 out of its route to the LB IP; undoing it brings
 * both back. Another taint changes nothing; a kill's sync keeps the mark.
 */

const root = requireRoot();
const MODES = ['iptables', 'nftables'] as const;
const tag = (mode: string) => mode.slice(0, 3);

interface NodeJson {
  healthz: number;
  nodeEligible: boolean;
  deleting: boolean;
  taints: { key: string; value?: string; effect: string }[];
  loadBalancers: { to: string; port: number; via: string[]; settled: boolean }[];
}

async function status(labName: string, url: string): Promise<{ status: number; body: string }> {
  const r = await lab(['exec', labName, 'client', '--', 'curl', '-s', '-m', '3', '-w', '\n%{http_code}', url]);
  expect(r.exitCode, r.stderr).toBe(0);
  const lines = r.stdout.split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') };
}

async function node(labName: string, args: string[]): Promise<NodeJson> {
  const r = await lab(['node', labName, 'node2', ...args, '--json']);
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as NodeJson;
}

/** The router's next hops for the LB IP, read from the kernel. */
async function routeVia(labName: string): Promise<string[]> {
  const r = await lab(['exec', labName, 'router', '--', 'ip', '-j', 'route', 'show', '10.240.0.100']);
  const [route] = JSON.parse(r.stdout) as { gateway?: string; nexthops?: { gateway: string }[] }[];
  return (route?.nexthops?.map((h) => h.gateway) ?? (route?.gateway ? [route.gateway] : [])).sort();
}

describe.skipIf(!root)('lab node: a Node being deleted or tainted, kube-proxy /healthz and the load balancer following it', () => {
  const labs = MODES.map((m) => `kne-${tag(m)}`);
  beforeAll(async () => {
    for (const l of labs) await lab(['down', l]);
  });
  afterAll(async () => {
    for (const l of labs) await lab(['down', l]);
  });

  for (const mode of MODES) {
    it(`${mode}: --deleting and the ToBeDeletedByClusterAutoscaler taint turn node2's /healthz to 503 and the LB leaves it; undone, both come back`, async () => {
      const L = `kne-${tag(mode)}`;
      const up = await lab(['up', 'loadbalancer', '--name', L, '--set', `kubeProxy.mode=${mode}`, '--set', 'loadBalancer.proxyHealthz=true']);
      expect(up.exitCode, up.stderr.slice(-1500)).toBe(0);
      expect(await routeVia(L)).toEqual(['10.240.0.4', '10.240.0.5']);
      expect((await status(L, 'http://10.240.0.5:10256/healthz')).status).toBe(200);

      // Being deleted: 503 with nodeEligible false, /livez still 200, the route down to node1.
      const del = await node(L, ['--deleting']);
      expect(del).toMatchObject({ deleting: true, healthz: 503, nodeEligible: false });
      expect(del.loadBalancers).toEqual([expect.objectContaining({ to: '10.240.0.100/32', port: 10256, via: ['10.240.0.4'], settled: true })]);
      const h = await status(L, 'http://10.240.0.5:10256/healthz');
      expect(h.status).toBe(503);
      expect(JSON.parse(h.body)).toMatchObject({ nodeEligible: false });
      expect((await status(L, 'http://10.240.0.5:10256/livez')).status).toBe(200);
      expect((await status(L, 'http://10.240.0.4:10256/healthz')).status).toBe(200);
      expect(await routeVia(L)).toEqual(['10.240.0.4']);
      // A sync for something else (kill/revive) keeps the mark: the lab's state has it.
      expect((await lab(['kill', L, 'web-1'])).exitCode).toBe(0);
      expect((await lab(['revive', L, 'web-1'])).exitCode).toBe(0);
      expect((await status(L, 'http://10.240.0.5:10256/healthz')).status).toBe(503);
      expect(await routeVia(L)).toEqual(['10.240.0.4']);

      // Taken back: 200, both next hops again.
      expect(await node(L, ['--no-deleting'])).toMatchObject({ deleting: false, healthz: 200, nodeEligible: true });
      expect((await status(L, 'http://10.240.0.5:10256/healthz')).status).toBe(200);
      expect(await routeVia(L)).toEqual(['10.240.0.4', '10.240.0.5']);

      // Another taint: kube-proxy does not look at it.
      expect(await node(L, ['--taint', 'example.com/maintenance=yes:NoSchedule'])).toMatchObject({ healthz: 200, taints: [{ key: 'example.com/maintenance', value: 'yes', effect: 'NoSchedule' }] });
      expect((await status(L, 'http://10.240.0.5:10256/healthz')).status).toBe(200);

      // The cluster autoscaler's taint: 503 and out of the route, as for a deletion.
      const tainted = await node(L, ['--taint', 'ToBeDeletedByClusterAutoscaler=1765100000:NoSchedule']);
      expect(tainted).toMatchObject({ deleting: false, healthz: 503, nodeEligible: false });
      expect(tainted.taints.map((t) => t.key)).toEqual(['example.com/maintenance', 'ToBeDeletedByClusterAutoscaler']);
      expect((await status(L, 'http://10.240.0.5:10256/healthz')).status).toBe(503);
      expect(await routeVia(L)).toEqual(['10.240.0.4']);
      // New connections to the LB IP now enter node1 only.
      expect((await lab(['probe', L, '-n', '10'])).exitCode).toBe(0);
      expect((await lab(['conntrack', L, 'node2', '--all'])).stdout).not.toContain('10.240.0.100');

      expect(await node(L, ['--untaint', 'ToBeDeletedByClusterAutoscaler'])).toMatchObject({ healthz: 200, taints: [{ key: 'example.com/maintenance' }] });
      expect((await status(L, 'http://10.240.0.5:10256/healthz')).status).toBe(200);
      expect(await routeVia(L)).toEqual(['10.240.0.4', '10.240.0.5']);

      // Bad input changes nothing (exit 2).
      const bad = await lab(['node', L, 'node2', '--taint', 'ToBeDeletedByClusterAutoscaler:Sometimes']);
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr).toMatch(/effect/);
      expect((await lab(['node', L, 'node2', '--untaint', 'nope'])).exitCode).toBe(2);
      expect((await lab(['node', L, 'node9', '--deleting'])).exitCode).toBe(2);
      expect((await status(L, 'http://10.240.0.5:10256/healthz')).status).toBe(200);
      await lab(['down', L]);
    }, 240_000);
  }
});
