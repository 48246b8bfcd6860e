import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab, requireRoot } from './helpers.js';

/**
 * trafficDistribution PreferSameNode (v1.34, gate PreferSameTrafficDistribution) against the real
 * kernel, in both proxy modes. The traffic-distribution scenario with node2 moved into zone-a, so
 * node1 and node2 share a zone: the EndpointSlice controller hints each endpoint for its node and
 * its zone; kube-proxy on node1 lists web-1 alone (PreferClose would list web-1 and web-2), and a
 * frontend's ClusterIP traffic stays on its node. With web-1 killed no endpoint is hinted for
 * node1: node1 falls back to its zone (web-2, not web-3), as upstream's topologyModeFromHints does.
 */

const root = requireRoot();
const MODES = ['iptables', 'nftables'] as const;

/** The KUBE-SVC / service-… chain's endpoints on a node, read from the kernel. */
async function endpointsInRules(labName: string, node: string, mode: string): Promise<string[]> {
  const r = await lab(['rules', labName, node]);
  expect(r.exitCode, r.stderr).toBe(0);
  const found = mode === 'iptables' ? [...r.stdout.matchAll(/-A KUBE-SVC-\S+ .*--comment "default\/web:https -> ([\d.:]+)"/g)].map((m) => m[1]!) : [...r.stdout.matchAll(/endpoint-\w+-default\/web\/tcp\/https__([\d.]+)\/(\d+)/g)].map((m) => `${m[1]}:${m[2]}`);
  return [...new Set(found)].sort();
}

/** Who answers 20 new connections from a pod to the ClusterIP. */
async function answers(labName: string, from: string): Promise<Record<string, number>> {
  const r = await lab(['probe', labName, '--from', from, '--to', '172.31.0.5:443', '-n', '20', '--json'], { timeout: 120_000 });
  expect(r.exitCode, r.stderr).toBe(0);
  const p = JSON.parse(r.stdout) as { answeredBy: Record<string, number>; failed: number };
  expect(p.failed).toBe(0);
  return p.answeredBy;
}

describe.skipIf(!root)('trafficDistribution PreferSameNode against the real kernel', () => {
  const labs = MODES.map((m) => `tdn-${m.slice(0, 3)}`);
  beforeAll(async () => {
    for (const l of labs) await lab(['down', l]);
  });
  afterAll(async () => {
    for (const l of labs) await lab(['down', l]);
  });

  for (const mode of MODES) {
    it(`${mode}: a pod's traffic stays on its node; with its node's endpoint killed it falls back to its zone`, async () => {
      const L = `tdn-${mode.slice(0, 3)}`;
      const up = await lab(['up', 'traffic-distribution', '--name', L, '--set', `kubeProxy.mode=${mode}`, '--set', 'services.web.trafficDistribution=PreferSameNode', '--set', 'nodes.node2.labels={ topology.kubernetes.io/zone: zone-a }']);
      expect(up.exitCode, up.stderr.slice(-1500)).toBe(0);
      // The EndpointSlice's hints: each endpoint for its node and its zone.
      const eps = await lab(['endpoints', L, '--json']);
      expect(eps.exitCode, eps.stderr).toBe(0);
      expect(eps.stdout).toContain('forNodes');
      expect(await endpointsInRules(L, 'node1', mode)).toEqual(['10.244.0.3:8443']);
      expect(await endpointsInRules(L, 'node2', mode)).toEqual(['10.244.1.2:8443']);
      expect(await endpointsInRules(L, 'node3', mode)).toEqual(['10.244.2.2:8443']);
      expect(await answers(L, 'frontend')).toEqual({ 'web-1': 20 });
      expect(await answers(L, 'frontend2')).toEqual({ 'web-2': 20 });

      // node1 has no endpoint hinted for it: it falls back to zone-a's endpoints (web-2), not to all.
      const kill = await lab(['kill', L, 'web-1']);
      expect(kill.exitCode, kill.stderr).toBe(0);
      expect(await endpointsInRules(L, 'node1', mode)).toEqual(['10.244.1.2:8443']);
      expect(await endpointsInRules(L, 'node2', mode)).toEqual(['10.244.1.2:8443']);
      expect(await endpointsInRules(L, 'node3', mode)).toEqual(['10.244.2.2:8443']);
      expect(await answers(L, 'frontend')).toEqual({ 'web-2': 20 });

      // zone-a empty too: node1 and node2 fall back to every endpoint (web-3).
      expect((await lab(['kill', L, 'web-2'])).exitCode).toBe(0);
      expect(await endpointsInRules(L, 'node1', mode)).toEqual(['10.244.2.2:8443']);
      expect(await answers(L, 'frontend')).toEqual({ 'web-3': 20 });

      expect((await lab(['revive', L, 'web-1'])).exitCode).toBe(0);
      expect((await lab(['revive', L, 'web-2'])).exitCode).toBe(0);
      expect(await endpointsInRules(L, 'node1', mode)).toEqual(['10.244.0.3:8443']);
      expect(await answers(L, 'frontend')).toEqual({ 'web-1': 20 });
      await lab(['down', L]);
    }, 240_000);
  }
});
