import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../lab/kernel/processes.js';
import { hostSnapshot, lab, namespaces, requireRoot } from './helpers.js';
import type { VerifyResult as Report } from '../../lab/verify/engine.js';
import type { LabStatus } from '../../lab/api/status.js';

const root = requireRoot();
const LAB = 'loadbalancer';

describe.skipIf(!root)('loadbalancer lab against the real kernel', () => {
  let before: Record<string, string>;

  beforeAll(async () => {
    await lab(['down', LAB]);
    before = await hostSnapshot();
  });
  afterAll(async () => {
    await lab(['down', LAB]);
  });

  it('comes up with the LB IP routed over both nodes and held by none', async () => {
    const up = await lab(['up', LAB, '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    const result = JSON.parse(up.stdout) as { namespaces: string[]; processes: { pod: string; pid: number }[] };
    expect(result.namespaces.sort()).toEqual(['client', 'node1', 'node2', 'router', 'web-1', 'web-2'].map((h) => `${LAB}-${h}`));

    const route = await execa('ip', ['-n', `${LAB}-router`, 'route', 'show', '10.240.0.100']);
    expect(String(route.stdout)).toMatch(/nexthop via 10\.240\.0\.4 .*\n.*nexthop via 10\.240\.0\.5/);
    for (const node of ['node1', 'node2']) {
      const addrs = await execa('ip', ['-n', `${LAB}-${node}`, '-4', '-o', 'addr', 'show']);
      expect(String(addrs.stdout)).not.toContain('10.240.0.100');
      const rules = await lab(['rules', LAB, node]);
      expect(rules.stdout).toContain(
        '-A KUBE-SERVICES -d 10.240.0.100/32 -p tcp -m comment --comment "default/web:https loadbalancer IP" -m tcp --dport 443 -j KUBE-EXT-54WW65JLHZHRV7HC',
      );
    }
  });

  it('verifies seed 004 request and response steps on all four paths (entry node x endpoint)', async () => {
    const v = await lab(['verify', LAB, '--json']);
    expect(v.exitCode, v.stderr + v.stdout.slice(0, 3000)).toBe(0);
    const report = JSON.parse(v.stdout) as Report;
    expect(report.failed).toBe(0);
    expect(report.passed).toBeGreaterThanOrEqual(46);

    // Which node translated, which pod answered, and the source each pod saw.
    const expected: Record<string, [string, string, RegExp]> = {
      'node1-cross-node': ['node1', 'web-2', /^10\.240\.0\.4:\d+$/],
      'node1-same-node': ['node1', 'web-1', /^10\.244\.0\.1:\d+$/],
      'node2-same-node': ['node2', 'web-2', /^10\.244\.1\.1:\d+$/],
      'node2-cross-node': ['node2', 'web-1', /^10\.240\.0\.5:\d+$/],
    };
    for (const [name, [node, pod, saw]] of Object.entries(expected)) {
      const p = report.paths.find((x) => x.name === name)!;
      expect(p.flow?.conntrack?.node, name).toBe(node);
      expect(p.flow?.answer?.pod, name).toBe(pod);
      expect(p.flow?.answer?.client, name).toMatch(saw);
      expect(p.flow?.target).toBe('10.240.0.100:443');
      // Request 1-5 and response 1-5 of the seed are all there (response 3 skipped on same-node paths).
      const labels = new Set(p.steps.map((s) => s.step.replace(/-\d$/, '')));
      for (const l of ['request 1', 'request 2', 'request 3', 'request 5', 'response 1', 'response 4', 'response 5']) expect([...labels], name).toContain(l);
      // The client always sees the reply from the LB IP and port.
      const last = p.steps.find((s) => s.step === 'response 5')!;
      expect(last.status).toBe('pass');
      expect(last.seen).toMatch(/^10\.240\.0\.100:443 > 10\.241\.0\.4:\d+ \[S\.\]$/);
    }
    // Every request of the run was answered.
    expect(report.flows.length).toBeGreaterThan(0);
    expect(report.flows.every((f) => f.answer)).toBe(true);
    console.log(`verify ${LAB}: ${report.passed} steps, ${report.flows.length} requests, ${report.ms} ms`);
  });

  it('spreads client connections over both nodes and both pods, every one answered', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const r = await execa('ip', ['netns', 'exec', `${LAB}-client`, 'curl', '-sS', '--max-time', '2', 'http://10.240.0.100:443/'], { reject: false });
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const a = JSON.parse(String(r.stdout)) as { pod: string; client: string };
      seen.add(`${a.pod} saw ${a.client.split(':')[0]}`);
    }
    // The source a pod sees names the entry node: its eth0 across nodes, its cbr0 on the same node.
    expect([...seen].sort()).toEqual(['web-1 saw 10.240.0.5', 'web-1 saw 10.244.0.1', 'web-2 saw 10.240.0.4', 'web-2 saw 10.244.1.1']);
  });

  it('goes down completely', async () => {
    // This test's own look at the lab it takes down: its workloads' pids, from lab status.
    const [status] = JSON.parse((await lab(['status', LAB, '--json'])).stdout) as LabStatus[];
    const pids = status?.workloads.map((w) => w.pid) ?? [];
    expect(pids.length, 'the lab should be up, with its workloads').toBeGreaterThan(0);
    const d = await lab(['down', LAB]);
    expect(d.exitCode).toBe(0);
    expect((await namespaces()).filter((n) => n.startsWith(`${LAB}-`))).toEqual([]);
    expect(pids.filter(isAlive)).toEqual([]);
    expect(await hostSnapshot()).toEqual(before);
  });
});
