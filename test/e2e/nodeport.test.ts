import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostSnapshot, lab, labProcesses, namespaces, requireRoot } from './helpers.js';
import type { LabStatus } from '../../lab/api/status.js';
import type { VerifyResult } from '../../lab/verify/engine.js';

const root = requireRoot();

describe.skipIf(!root)('nodeport lab against the real kernel', () => {
  let before: Record<string, string>;
  let nsBefore: string[];

  beforeAll(async () => {
    await lab(['down', 'nodeport']);
    before = await hostSnapshot();
    nsBefore = await namespaces();
  });
  afterAll(async () => {
    await lab(['down', 'nodeport']);
  });

  it('comes up with one namespace per host and the documented addresses', async () => {
    const up = await lab(['up', 'nodeport', '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    const result = JSON.parse(up.stdout) as { namespaces: string[]; processes: { pod: string; pid: number }[] };
    expect(result.namespaces.sort()).toEqual(['nodeport-client', 'nodeport-node1', 'nodeport-node2', 'nodeport-router', 'nodeport-web-1', 'nodeport-web-2']);
    expect(result.processes.map((p) => p.pod).sort()).toEqual(['web-1', 'web-2']);

    const status = JSON.parse((await lab(['status', 'nodeport', '--json'])).stdout) as LabStatus[];
    const addrs = Object.fromEntries(status[0]!.namespaces.map((n) => [n.ns, n.addresses.map((a) => `${a.ifname} ${a.cidr}`).sort()]));
    expect(addrs['nodeport-node1']).toEqual(['cbr0 10.244.0.1/24', 'eth0 10.240.0.4/24']);
    expect(addrs['nodeport-node2']).toEqual(['cbr0 10.244.1.1/24', 'eth0 10.240.0.5/24']);
    expect(addrs['nodeport-client']).toEqual(['eth0 10.241.0.4/24']);
    expect(addrs['nodeport-web-1']).toEqual(['eth0 10.244.0.3/24']);
    expect(addrs['nodeport-web-2']).toEqual(['eth0 10.244.1.2/24']);
    expect(status[0]!.workloads.every((w) => w.running)).toBe(true);
  });

  it('gives no lab namespace a route out of the lab', async () => {
    for (const host of ['router', 'node1', 'node2', 'client', 'web-1', 'web-2']) {
      const r = await lab(['exec', 'nodeport', host, '--', 'ip', '-4', 'route', 'show']);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).not.toMatch(/^default/m);
      for (const line of r.stdout.split('\n').filter(Boolean)) {
        expect(line, `${host}: ${line}`).toMatch(/^(10\.24[01]\.0\.0\/24|10\.244\.\d+\.0\/24|10\.244\.0\.0\/16|172\.31\.0\.0\/16) /);
      }
    }
  });

  it('writes kube-proxy rules that iptables accepted, with hashed chain names', async () => {
    const r = await lab(['rules', 'nodeport', 'node1']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:https" -m tcp --dport 32000 -j KUBE-EXT-54WW65JLHZHRV7HC');
    expect(r.stdout).toMatch(/-A KUBE-SVC-54WW65JLHZHRV7HC .*--probability 0\.50000000000 -j KUBE-SEP-/);
    expect(r.stdout).toContain('-j MASQUERADE --random-fully');
  });

  it('verifies every documented step from captures', async () => {
    const v = await lab(['verify', 'nodeport', '--json']);
    expect(v.exitCode, v.stderr + v.stdout.slice(0, 2000)).toBe(0);
    const report = JSON.parse(v.stdout) as VerifyResult;
    expect(report.failed).toBe(0);
    expect(report.passed).toBeGreaterThanOrEqual(20);
    const cross = report.paths.find((p) => p.name === 'cross-node')!;
    const same = report.paths.find((p) => p.name === 'same-node')!;
    // What the pods themselves saw: node1's address across nodes, cbr0's address on the same node.
    expect(cross.flow?.answer?.pod).toBe('web-2');
    expect(cross.flow?.answer?.client).toMatch(/^10\.240\.0\.4:\d+$/);
    expect(same.flow?.answer?.pod).toBe('web-1');
    expect(same.flow?.answer?.client).toMatch(/^10\.244\.0\.1:\d+$/);
    expect(Object.keys(report.captures).sort()).toEqual(['client:eth0', 'node1:cbr0', 'node1:eth0', 'node2:cbr0', 'node2:eth0', 'router:br-nodes', 'web-1:eth0', 'web-2:eth0']);
    // Every capture stopped with the command.
    expect((await labProcesses('nodeport')).filter((l) => l.includes('tcpdump'))).toEqual([]);
  });

  it('fails verify when the kernel disagrees with the walkthrough', async () => {
    // Remove node1's jump to the web-1 endpoint: every connection now goes to web-2,
    // so the same-node path the walkthrough documents can no longer be observed.
    const del = await lab(['exec', 'nodeport', 'node1', '--', 'iptables', '-t', 'nat', '-D', 'KUBE-SVC-54WW65JLHZHRV7HC', '2']);
    expect(del.exitCode, del.stderr).toBe(0);
    const v = await lab(['verify', 'nodeport', '--json']);
    expect(v.exitCode).toBe(1);
    const report = JSON.parse(v.stdout) as VerifyResult;
    expect(report.paths.find((p) => p.name === 'same-node')!.steps.some((s) => s.status === 'fail')).toBe(true);
    expect(report.paths.find((p) => p.name === 'cross-node')!.steps.every((s) => s.status === 'pass')).toBe(true);
  });

  it('goes down completely and leaves the host as it was', async () => {
    const d = await lab(['down', 'nodeport']);
    expect(d.exitCode).toBe(0);
    expect(await namespaces()).toEqual(nsBefore);
    expect(await labProcesses('nodeport')).toEqual([]);
    expect(await hostSnapshot()).toEqual(before);
    // Idempotent.
    const again = await lab(['down', 'nodeport']);
    expect(again.exitCode).toBe(0);
  });
});
