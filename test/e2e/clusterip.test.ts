import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../lab/kernel/processes.js';
import { RESOLV_CONF_HEADER } from '../../lab/plan/dns.js';
import { hostSnapshot, lab, namespaces, requireRoot } from './helpers.js';
import type { VerifyResult as Report } from '../../lab/verify/engine.js';
import type { LabStatus } from '../../lab/api/status.js';

const root = requireRoot();
const LAB = 'clusterip';
const PODS = ['frontend', 'web-1', 'web-2', 'coredns'];

/** One request from a pod, straight through `ip netns exec`: the answer's pod, or undefined when it failed. */
async function curlFrom(pod: string, url: string, maxTime = 1): Promise<string | undefined> {
  const r = await execa('ip', ['netns', 'exec', `${LAB}-${pod}`, 'curl', '-sS', '--max-time', String(maxTime), url], { reject: false });
  if (r.exitCode !== 0) return undefined;
  return (JSON.parse(String(r.stdout)) as { pod: string }).pod;
}


describe.skipIf(!root)('clusterip lab against the real kernel', () => {
  let before: Record<string, string>;

  beforeAll(async () => {
    await lab(['down', LAB]);
    before = await hostSnapshot();
  });
  afterAll(async () => {
    await execa('ip', ['netns', 'exec', `${LAB}-node1`, 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1'], { reject: false });
    await lab(['down', LAB]);
  });

  it('comes up with the frontend, two backends and a DNS pod, and a resolv.conf for every pod', async () => {
    const up = await lab(['up', LAB, '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    const result = JSON.parse(up.stdout) as { namespaces: string[]; processes: { pod: string; pid: number; ports: number[] }[] };
    expect(result.namespaces.sort()).toEqual(['router', 'node1', 'node2', ...PODS].map((h) => `${LAB}-${h}`).sort());
    expect(result.processes.map((p) => [p.pod, p.ports])).toEqual([
      ['web-1', [8443]],
      ['web-2', [8443]],
      ['coredns', [53]],
    ]);

    for (const pod of PODS) {
      expect(readFileSync(`/etc/netns/${LAB}-${pod}/resolv.conf`, 'utf8')).toBe(
        `${RESOLV_CONF_HEADER}\nnameserver 172.31.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n`,
      );
    }
    // ip netns exec bind-mounts it over /etc/resolv.conf for commands run in the pod.
    const inside = await execa('ip', ['netns', 'exec', `${LAB}-frontend`, 'cat', '/etc/resolv.conf']);
    expect(String(inside.stdout)).toMatch(/^nameserver 172\.31\.0\.10$/m);
  });

  it('writes kube-proxy\'s UDP rules for kube-dns, with the chain names real clusters show', async () => {
    const r = await lab(['rules', LAB, 'node1']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('-A KUBE-SERVICES -d 172.31.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU');
    expect(r.stdout).toContain('-A KUBE-SERVICES -d 172.31.0.10/32 -p tcp -m comment --comment "kube-system/kube-dns:dns-tcp cluster IP" -m tcp --dport 53 -j KUBE-SVC-ERIFXISQEP7F7OF4');
    expect(r.stdout).toMatch(/-A KUBE-SEP-\w+ -p udp -m comment --comment "kube-system\/kube-dns:dns" -m udp -j DNAT --to-destination 10\.244\.1\.10:53/);
  });

  it('answers DNS inside the lab: service names resolve to ClusterIPs over UDP through the kube-dns Service', async () => {
    const getent = async (name: string) => {
      const r = await execa('ip', ['netns', 'exec', `${LAB}-frontend`, 'getent', 'ahostsv4', name], { reject: false });
      return { code: r.exitCode, first: String(r.stdout).split(/\s+/)[0] };
    };
    expect(await getent('web.default.svc.cluster.local')).toEqual({ code: 0, first: '172.31.0.5' });
    expect(await getent('web')).toEqual({ code: 0, first: '172.31.0.5' }); // through the search list
    expect(await getent('kube-dns.kube-system')).toEqual({ code: 0, first: '172.31.0.10' });
    expect((await getent('nosuch.default.svc.cluster.local')).code).not.toBe(0);
    // The DNS pod saw the frontend's own address: no SNAT for pod -> ClusterIP over UDP either.
    const log = readFileSync(`/run/kube-packet-lab/${LAB}/pods/coredns.log`, 'utf8');
    expect(log).toMatch(/udp from 10\.244\.0\.10:\d+: A web\.default\.svc\.cluster\.local -> NOERROR 172\.31\.0\.5/);
    expect(log).toMatch(/A web\.default\.svc\.cluster\.local\.default\.svc\.cluster\.local -> NXDOMAIN/);
  });

  it('verifies every step from captures: DNAT on node1, no SNAT, reverse translation, both paths, by name, even spread, hairpin', async () => {
    const v = await lab(['verify', LAB, '--json']);
    expect(v.exitCode, v.stderr + v.stdout.slice(0, 3000)).toBe(0);
    const report = JSON.parse(v.stdout) as Report;
    expect(report.failed).toBe(0);
    expect(report.passed).toBeGreaterThanOrEqual(36);
    const path = (name: string) => report.paths.find((p) => p.name === name)!;

    // The backends saw the frontend's own pod IP and port: no SNAT.
    for (const name of ['cross-node', 'same-node', 'by-name']) {
      const flow = path(name).flow!;
      expect(flow.client).toMatch(/^10\.244\.0\.10:\d+$/);
      expect(flow.target).toBe('172.31.0.5:443');
      expect(flow.answer?.client).toBe(flow.client);
      expect(flow.conntrack?.node).toBe('node1');
    }
    expect(path('cross-node').flow?.answer?.pod).toBe('web-2');
    expect(path('same-node').flow?.answer?.pod).toBe('web-1');

    // The same-node reply needed br_netfilter: it was seen reverse-translated on the frontend's bridge port.
    const reverse = path('same-node').steps.find((s) => s.step === 'reply 2-4')!;
    expect(reverse.status).toBe('pass');
    expect(reverse.seen).toMatch(/^172\.31\.0\.5:443 > 10\.244\.0\.10:\d+ \[S\.\]$/);

    // 200 requests: each backend between 35 % and 65 %.
    const group = path('distribution').flow!.group;
    const spread = report.flows.filter((f) => f.group === group);
    expect(spread).toHaveLength(200);
    for (const pod of ['web-1', 'web-2']) {
      const share = spread.filter((f) => f.answer?.pod === pod).length / spread.length;
      expect(share, pod).toBeGreaterThanOrEqual(0.35);
      expect(share, pod).toBeLessThanOrEqual(0.65);
    }

    // Hairpin: web-1 reached itself through the ClusterIP, masqueraded to cbr0's address.
    const hairpin = path('hairpin').flow!;
    expect(hairpin.client).toMatch(/^10\.244\.0\.3:\d+$/);
    expect(hairpin.answer?.pod).toBe('web-1');
    expect(hairpin.answer?.client).toMatch(/^10\.244\.0\.1:\d+$/);

    console.log(`verify ${LAB}: ${report.passed} steps, ${report.flows.length} requests, ${report.ms} ms`);
  });

  it('breaks same-node pod -> service -> pod when node1 stops passing bridged frames to iptables', async () => {
    const set = (v: number) => execa('ip', ['netns', 'exec', `${LAB}-node1`, 'sysctl', '-qw', `net.bridge.bridge-nf-call-iptables=${v}`]);
    await set(0);
    const answers: (string | undefined)[] = [];
    try {
      // Until one request is balanced to web-1 (a coin toss each time).
      while (answers.length < 30 && !answers.includes(undefined)) answers.push(await curlFrom('frontend', 'http://172.31.0.5:443/', 0.5));
    } finally {
      await set(1);
    }
    expect(answers).toContain(undefined);
    expect(answers.filter((a) => a !== undefined).every((a) => a === 'web-2')).toBe(true);
    // With it back on, requests succeed again, to both backends.
    const after = new Set<string | undefined>();
    for (let i = 0; i < 30 && after.size < 2; i++) after.add(await curlFrom('frontend', 'http://172.31.0.5:443/'));
    expect([...after].sort()).toEqual(['web-1', 'web-2']);
  });

  it('goes down completely: namespaces, workloads and the resolv.conf folders', async () => {
    // This test's own look at the lab it takes down: its workloads' pids, from lab status.
    const [status] = JSON.parse((await lab(['status', LAB, '--json'])).stdout) as LabStatus[];
    const pids = status?.workloads.map((w) => w.pid) ?? [];
    expect(pids.length, 'the lab should be up, with its workloads').toBeGreaterThan(0);
    const d = await lab(['down', LAB]);
    expect(d.exitCode).toBe(0);
    expect((await namespaces()).filter((n) => n.startsWith(`${LAB}-`))).toEqual([]);
    for (const pod of PODS) expect(existsSync(`/etc/netns/${LAB}-${pod}`), pod).toBe(false);
    expect(pids.filter(isAlive)).toEqual([]);
    expect(await hostSnapshot()).toEqual(before);
  });
});

describe.skipIf(!root)('clusterip: pod resolv.conf files outside the lab state', () => {
  const NAME = 'cip-files';
  const dir = (pod: string) => `/etc/netns/${NAME}-${pod}`;
  afterAll(async () => {
    await lab(['down', NAME]);
    for (const pod of PODS) rmSync(dir(pod), { recursive: true, force: true });
  });

  it('refuses to write over a folder holding files it did not write, and leaves it alone', async () => {
    mkdirSync(dir('web-1'), { recursive: true });
    writeFileSync(`${dir('web-1')}/hosts`, '127.0.0.1 someone-elses\n');
    const up = await lab(['up', LAB, '--name', NAME]);
    expect(up.exitCode).toBe(5);
    expect(up.stderr).toContain(`${dir('web-1')}/hosts`);
    expect(readFileSync(`${dir('web-1')}/hosts`, 'utf8')).toBe('127.0.0.1 someone-elses\n');
    expect((await namespaces()).filter((n) => n.startsWith(`${NAME}-`))).toEqual([]);
    rmSync(dir('web-1'), { recursive: true, force: true });
  });

  it('takes over its own resolv.conf left behind when the state was lost, and removes it at down', async () => {
    mkdirSync(dir('frontend'), { recursive: true });
    writeFileSync(`${dir('frontend')}/resolv.conf`, `${RESOLV_CONF_HEADER}\nnameserver 172.31.0.99\n`);
    const up = await lab(['up', LAB, '--name', NAME]);
    expect(up.exitCode, up.stderr).toBe(0);
    expect(readFileSync(`${dir('frontend')}/resolv.conf`, 'utf8')).toContain('nameserver 172.31.0.10\n');
    expect((await lab(['down', NAME])).exitCode).toBe(0);
    for (const pod of PODS) expect(existsSync(dir(pod)), pod).toBe(false);
  });
});
