import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab, requireRoot, slowConnectionTo } from './helpers.js';
import type { KillResult } from '../../lab/api/pods.js';
import type { ProbeResult } from '../../lab/api/probe.js';
import type { EndpointsView } from '../../lab/plan/scale.js';

/**
 * Terminating endpoints (lab kill --terminating) in both proxy modes, against the real kernel:
 * with a ready endpoint left, new connections avoid the terminating pod while a connection it
 * already has is answered to the end; with none left (every pod terminating, or a Local node whose
 * only pod terminates) new connections do reach it; revive undoes it. Each state is proven by its
 * walkthrough (topologies/*terminating*.walkthrough.yaml).
 */

const root = requireRoot();
const MODES = ['iptables', 'nftables'] as const;
const name = (mode: string, what: string) => `term-${what}-${mode.slice(0, 3)}`;
const NODEPORT = '10.240.0.4:32000';

interface Report {
  passed: number;
  failed: number;
  paths: { name: string; steps: { title: string; status: string; seen: string }[] }[];
}

async function json<T>(args: string[]): Promise<T> {
  const r = await lab([...args, '--json']);
  expect(r.exitCode, `lab ${args.join(' ')}: ${r.stderr.slice(-1500)}`).toBe(0);
  return JSON.parse(r.stdout) as T;
}

async function verifyPasses(labName: string, walkthrough?: string): Promise<Report> {
  const v = await lab(['verify', labName, '--json', ...(walkthrough ? ['--walkthrough', walkthrough] : [])]);
  const report = JSON.parse(v.stdout) as Report;
  const failed = report.paths.flatMap((p) => p.steps).filter((s) => s.status === 'fail');
  expect(failed, JSON.stringify(failed, null, 2)).toEqual([]);
  expect(v.exitCode).toBe(0);
  expect(report.passed).toBeGreaterThan(0);
  return report;
}

describe.skipIf(!root)('terminating endpoints against the real kernel', () => {
  const all = MODES.flatMap((m) => [name(m, 'np'), name(m, 'local')]);
  beforeAll(async () => {
    for (const l of all) await lab(['down', l]);
  });
  afterAll(async () => {
    for (const l of all) await lab(['down', l]);
  });

  for (const mode of MODES) {
    it(`${mode} mode, nodeport: an existing connection to web-2 is served after kill --terminating, new ones avoid it, and with no ready pod left they reach it`, async () => {
      const L = name(mode, 'np');
      const up = await lab(['up', 'nodeport', '--name', L, '--set', `kubeProxy.mode=${mode}`]);
      expect(up.exitCode, up.stderr).toBe(0);

      // Slow requests (answered after 6 s) until one is translated to web-2 on node1.
      const { pending, ...onWeb2 } = await slowConnectionTo(L, NODEPORT, '10.244.1.2');
      expect(onWeb2.done, 'no slow connection landed on web-2').toBeDefined();

      const k = await json<KillResult>(['kill', L, 'web-2', '--terminating']);
      expect(k.terminating).toBe(true);
      expect(k.stopped).toBe(false);
      expect(k.existing.some((e) => e.state === 'ESTABLISHED' && e.original.includes(`:${onWeb2.port} >`))).toBe(true);
      expect(k.endpointsAfter[0]!.terminating).toEqual([{ pod: 'web-2', node: 'node2', address: '10.244.1.2:8443', conditions: { ready: false, serving: true, terminating: true } }]);
      expect(k.explanation.join(' ')).toContain('1 ready endpoint is left');
      // New connections avoid web-2 at once…
      const p = await json<ProbeResult>(['probe', L, '-n', '20']);
      expect(p.answeredBy).toEqual({ 'web-1': 20 });
      // …while the one it already had is answered by web-2, which keeps running.
      expect((JSON.parse(await onWeb2.done!) as { pod: string }).pod).toBe('web-2');
      await Promise.all(pending);

      const again = await lab(['kill', L, 'web-2', '--terminating']);
      expect(again.exitCode).toBe(5);
      expect(again.stderr).toContain('already terminating');
      expect((await lab(['status', L])).stdout).toMatch(/workload web-2 .* running terminating/);
      const human = await lab(['endpoints', L]);
      expect(human.stdout).toMatch(/10\.244\.1\.2:8443\s+web-2\s+node2\s+ready=false serving=true terminating=true/);
      await verifyPasses(L, 'nodeport-terminating');

      // No ready pod left: the Cluster policy falls back to both terminating pods instead of REJECT.
      const k1 = await json<KillResult>(['kill', L, 'web-1', '--terminating']);
      expect(k1.explanation.join(' ')).toContain('no ready endpoint is left anywhere');
      const rules = (await lab(['rules', L, 'node1', ...(mode === 'iptables' ? ['-t', 'filter'] : [])])).stdout;
      expect(rules).not.toMatch(/has no endpoints|reject-chain ;|: goto reject-chain/);
      await verifyPasses(L, 'nodeport-all-terminating');

      // revive undoes it: both ready again, the seed's walkthrough passes.
      for (const pod of ['web-1', 'web-2']) expect((await lab(['revive', L, pod])).exitCode).toBe(0);
      const eps = await json<{ services: EndpointsView[] }>(['endpoints', L]);
      expect(eps.services[0]!.endpoints.map((e) => [e.pod, e.conditions])).toEqual([
        ['web-1', { ready: true, serving: true, terminating: false }],
        ['web-2', { ready: true, serving: true, terminating: false }],
      ]);
      expect(eps.services[0]!.terminating).toEqual([]);
      await verifyPasses(L);
      await lab(['down', L]);
    });

    it(`${mode} mode, nodeport-local: node2's only pod terminating still takes node2's NodePort traffic`, async () => {
      const L = name(mode, 'local');
      const up = await lab(['up', 'nodeport-local', '--name', L, '--set', `kubeProxy.mode=${mode}`]);
      expect(up.exitCode, up.stderr).toBe(0);
      const k = await json<KillResult>(['kill', L, 'web-2', '--terminating']);
      expect(k.explanation.join(' ')).toContain('node2 falls back to 10.244.1.2:8443');
      const report = await verifyPasses(L, 'nodeport-local-terminating');
      const svl = report.paths[0]!.steps[1]!;
      expect(svl.seen).toMatch(mode === 'iptables' ? /counter \+\d+/ : /goto external-PET3V2EF-default\/web\/tcp\/https/);
      await lab(['down', L]);
    });
  }
});
