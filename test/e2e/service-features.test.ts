import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, hostSnapshot, lab, labProcesses, namespaces, requireRoot, ROOT } from './helpers.js';
import type { LoadBalancerFollow } from '../../lab/api/health.js';

/**
 * Service features beyond the seeds, in both proxy modes against the real kernel:
 * loadBalancerSourceRanges (a client outside them dropped before any translation) and an
 * external IP (topologies/lb-source-ranges.yaml and its walkthrough); the health check node port
 * of a Local LoadBalancer, which the load balancer (the router) follows
 * (topologies/loadbalancer-local.yaml and its two walkthroughs).
 */

const root = requireRoot();
const MODES = ['iptables', 'nftables'] as const;
const name = (mode: string) => `lbsr-${mode.slice(0, 3)}`;
const lbLocal = (mode: string) => `lbl-${mode.slice(0, 3)}`;

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

  interface LoadBalancerFollow {
    router: string;
    to: string;
    via: string[];
    settled: boolean;
    ms: number;
  }
  const routeVia = async (l: string) => (await lab(['exec', l, 'router', '--', 'ip', 'route', 'show', '10.240.0.100'])).stdout.trim();
  const verified = async (l: string, walkthrough?: string) => {
    const v = await lab(['verify', l, '--json', ...(walkthrough ? ['--walkthrough', walkthrough] : [])]);
    const report = JSON.parse(v.stdout) as Report;
    expect(report.paths.flatMap((p) => p.steps).filter((s) => s.status === 'fail')).toEqual([]);
    expect(v.exitCode).toBe(0);
  };

  for (const mode of MODES) {
    it(`${mode} mode: killing node2's only pod turns its health check to 503, the load balancer drops node2, revive brings it back, scale follows too`, async () => {
      const l = lbLocal(mode);
      const host = await hostSnapshot();
      const up = await lab(['up', 'loadbalancer-local', '--name', l, '--set', `kubeProxy.mode=${mode}`, '--json']);
      expect(up.exitCode, up.stderr).toBe(0);
      // Both nodes healthy: the load balancer's first checks leave both next hops.
      const upLbs = (JSON.parse(up.stdout) as { loadBalancers: LoadBalancerFollow[] }).loadBalancers;
      expect(upLbs).toMatchObject([{ router: 'router', to: '10.240.0.100/32', via: ['10.240.0.4', '10.240.0.5'], settled: true }]);
      expect(await routeVia(l)).toMatch(/nexthop via 10\.240\.0\.4 .*\n\s*nexthop via 10\.240\.0\.5 /s);
      await verified(l);

      // The unready walkthrough fails while web-2 is ready: its 503 is not on the wire, and web-2 answers some connections.
      const early = await lab(['verify', l, '--json', '--walkthrough', 'loadbalancer-local-unready']);
      expect(early.exitCode).toBe(1);
      expect((JSON.parse(early.stdout) as Report).paths.flatMap((p) => p.steps).filter((s) => s.status === 'fail').map((s) => s.title)).toContain(
        "The load balancer's health checks of node2 are answered 503 (no ready local endpoint)",
      );
      const health = async (ip: string) => (await lab(['exec', l, 'client', '--', 'curl', '-s', '-w', ' %{http_code}', `${ip}:32100/healthz`])).stdout;
      expect(await health('10.240.0.5')).toMatch(/"localEndpoints": 1,\n\t"serviceProxyHealthy": true\n\} 200$/);
      // kube-proxy listens on its --nodeport-addresses: all addresses by default in iptables mode, the node IP in nftables mode.
      const local = await lab(['exec', l, 'node1', '--', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '127.0.0.1:32100']);
      expect(local.stdout).toBe(mode === 'iptables' ? '200' : '000');

      // web-2 dies: kube-proxy's count on node2 drops to 0 with the sync, the load balancer's probes see 503.
      const killed = await lab(['kill', l, 'web-2', '--json']);
      expect(killed.exitCode, killed.stderr).toBe(0);
      const after = (JSON.parse(killed.stdout) as { loadBalancers: LoadBalancerFollow[] }).loadBalancers;
      expect(after).toMatchObject([{ via: ['10.240.0.4'], settled: true }]);
      expect(await health('10.240.0.5')).toBe('{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "web"\n\t},\n\t"localEndpoints": 0,\n\t"serviceProxyHealthy": true\n} 503');
      expect(await health('10.240.0.4')).toMatch(/"localEndpoints": 1,.* 200$/s);
      // On the wire at node2: the load balancer's own probe (from the router, 10.240.0.1) answered 503.
      const wire = await lab(['exec', l, 'node2', '--', 'timeout', '5', 'tcpdump', '-l', '-n', '-A', '-i', 'eth0', '-c', '1', 'tcp src port 32100 and dst host 10.240.0.1 and tcp[tcpflags] & tcp-push != 0']);
      expect(wire.stdout).toMatch(/IP 10\.240\.0\.5\.32100 > 10\.240\.0\.1\.\d+: Flags \[P\.\][\s\S]*HTTP\/1\.1 503 Service Unavailable[\s\S]*"localEndpoints": 0/);
      expect(await routeVia(l)).toBe('10.240.0.100 via 10.240.0.4 dev br-nodes');
      await verified(l, 'loadbalancer-local-unready');

      // web-2 back: node2 answers 200 again and the load balancer sends to it again.
      const revived = await lab(['revive', l, 'web-2', '--json']);
      expect(revived.exitCode, revived.stderr).toBe(0);
      expect((JSON.parse(revived.stdout) as { loadBalancers: LoadBalancerFollow[] }).loadBalancers).toMatchObject([{ via: ['10.240.0.4', '10.240.0.5'], settled: true }]);
      expect(await health('10.240.0.5')).toMatch(/"localEndpoints": 1,.* 200$/s);
      await verified(l);

      // scale follows too: web=1 deletes web-2 (node2 has no pod left), web=2 brings it back.
      const down1 = await lab(['scale', l, 'web=1', '--json']);
      expect(down1.exitCode, down1.stderr).toBe(0);
      expect((JSON.parse(down1.stdout) as { loadBalancers: LoadBalancerFollow[] }).loadBalancers).toMatchObject([{ via: ['10.240.0.4'], settled: true }]);
      const up2 = await lab(['scale', l, 'web=2', '--json']);
      expect(up2.exitCode, up2.stderr).toBe(0);
      expect((JSON.parse(up2.stdout) as { loadBalancers: LoadBalancerFollow[] }).loadBalancers).toMatchObject([{ via: ['10.240.0.4', '10.240.0.5'], settled: true }]);

      // down leaves nothing: no namespace, no process (the servers and probes lived in the workload process), the host untouched.
      expect((await lab(['down', l])).exitCode).toBe(0);
      expect((await namespaces()).filter((n) => n.startsWith(`${l}-`))).toEqual([]);
      expect(await labProcesses(l)).toEqual([]);
      expect(await hostSnapshot()).toEqual(host);
    });
  }

  it('a lab built with web-2 not ready starts with node2 out of the load balancer', async () => {
    const l = lbLocal('iptables');
    const up = await lab(['up', 'loadbalancer-local', '--name', l, '--set', 'pods.web-2.ready=false', '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    expect((JSON.parse(up.stdout) as { loadBalancers: LoadBalancerFollow[] }).loadBalancers).toMatchObject([{ via: ['10.240.0.4'], settled: true }]);
    await verified(l, 'loadbalancer-local-unready');
    await lab(['down', l]);
  });

  it('a terminating pod is not ready: node2 answers 503 while web-2 still serves, and the load balancer drains node2', async () => {
    const l = lbLocal('nftables');
    expect((await lab(['up', 'loadbalancer-local', '--name', l, '--set', 'kubeProxy.mode=nftables'])).exitCode).toBe(0);
    const killed = await lab(['kill', l, 'web-2', '--terminating', '--json']);
    expect(killed.exitCode, killed.stderr).toBe(0);
    expect((JSON.parse(killed.stdout) as { loadBalancers: LoadBalancerFollow[] }).loadBalancers).toMatchObject([{ via: ['10.240.0.4'], settled: true }]);
    const health = await lab(['exec', l, 'client', '--', 'curl', '-s', '-w', ' %{http_code}', '10.240.0.5:32100']);
    expect(health.stdout).toMatch(/"localEndpoints": 0,.* 503$/s);
    // web-2 itself still answers (it serves out its grace period).
    expect((await lab(['exec', l, 'node2', '--', 'curl', '-s', '10.244.1.2:8443'])).stdout).toContain('"pod":"web-2"');
    await verified(l, 'loadbalancer-local-unready');
    await lab(['down', l]);
  });
});

describe.skipIf(!root)('the health check node port under crashes and signals', () => {
  const l = 'lbl-hard';
  const gone = async () => {
    expect((await namespaces()).filter((n) => n.startsWith(`${l}-`))).toEqual([]);
    expect(await labProcesses(l)).toEqual([]);
    expect(existsSync(`/run/kube-packet-lab/${l}`)).toBe(false);
  };
  beforeAll(async () => {
    await lab(['down', l]);
  });
  afterAll(async () => {
    await lab(['down', l]);
  });

  for (const stage of ['workloads', 'health checks']) {
    it(`an up SIGKILLed right after "${stage}": down stops the servers' and probes' process and removes every namespace`, async () => {
      const killed = await lab(['up', 'loadbalancer-local', '--name', l], { env: { LAB_CRASH_AFTER: stage } });
      expect(killed.exitCode).not.toBe(0);
      expect((await namespaces()).filter((n) => n.startsWith(`${l}-`))).toHaveLength(6);
      expect((await labProcesses(l)).length).toBeGreaterThan(0);
      expect((await lab(['down', l])).exitCode).toBe(0);
      await gone();
    });
  }

  it('kill web-1 and web-2 at once, then revive both at once, 3 times: each verb waits for its own route under the lab lock; with no healthy node the load balancer fails open', async () => {
    expect((await lab(['up', 'loadbalancer-local', '--name', l])).exitCode).toBe(0);
    const follows = (r: { stdout: string }) => (JSON.parse(r.stdout) as { loadBalancers: LoadBalancerFollow[] }).loadBalancers[0]!;
    const code = async (ip: string) => (await lab(['exec', l, 'client', '--', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `${ip}:32100`])).stdout;
    for (let i = 0; i < 3; i++) {
      const kills = await Promise.all([lab(['kill', l, 'web-1', '--json']), lab(['kill', l, 'web-2', '--json'])]);
      expect(kills.map((k) => k.exitCode), kills.map((k) => k.stderr).join('')).toEqual([0, 0]);
      // One of them ran first and saw one node left; the second saw none and the load balancer kept both (fail open).
      expect(kills.map((k) => follows(k).settled)).toEqual([true, true]);
      expect(kills.map((k) => follows(k).via.length).sort()).toEqual([1, 2]);
      expect([await code('10.240.0.4'), await code('10.240.0.5')]).toEqual(['503', '503']);
      const revives = await Promise.all([lab(['revive', l, 'web-1', '--json']), lab(['revive', l, 'web-2', '--json'])]);
      expect(revives.map((k) => k.exitCode), revives.map((k) => k.stderr).join('')).toEqual([0, 0]);
      expect(revives.map((k) => follows(k).settled)).toEqual([true, true]);
      expect(revives.map((k) => follows(k).via.length).sort()).toEqual([1, 2]);
      expect([await code('10.240.0.4'), await code('10.240.0.5')]).toEqual(['200', '200']);
    }
    expect((await lab(['down', l])).exitCode).toBe(0);
    await gone();
  });

  it('kill stopped by SIGINT or SIGTERM while it waits for the load balancer, 4 times: the lab stays usable, revive brings node2 back, down leaves nothing', async () => {
    expect((await lab(['up', 'loadbalancer-local', '--name', l])).exitCode).toBe(0);
    for (let i = 0; i < 4; i++) {
      const signal = i % 2 ? 'SIGTERM' : 'SIGINT';
      const k = execa(process.execPath, [CLI, 'kill', l, 'web-2'], { reject: false, cwd: ROOT });
      // The kill takes about 1.3 s here; from about 0.8 s on it waits for the load balancer's probes.
      await sleep(700 + i * 200);
      k.kill(signal);
      const r = await k;
      // Done, stopped by the lab's handler, or (still loading) ended by the signal itself.
      expect(r.exitCode === 0 || r.exitCode === (signal === 'SIGINT' ? 130 : 143) || r.signal === signal, `${r.exitCode} ${r.signal} ${String(r.stderr)}`).toBe(true);
      // Whatever the signal interrupted, the next verb finds a consistent lab and the load balancer follows it.
      const revived = await lab(['revive', l, 'web-2', '--json']);
      if (revived.exitCode === 0) expect(JSON.parse(revived.stdout).loadBalancers).toMatchObject([{ via: ['10.240.0.4', '10.240.0.5'], settled: true }]);
      else expect(revived.stderr).toMatch(/nothing to revive/);
    }
    expect((await lab(['down', l])).exitCode).toBe(0);
    await gone();
  });
});

/**
 * sessionAffinityConfig.clientIP.timeoutSeconds on the wire (topologies/affinity-timeout.walkthrough.yaml):
 * with a 3 s timeout the client sticks to one pod, verify polls node1's kernel until it forgets
 * the client, and the next connection is balanced afresh; in both proxy modes.
 */
describe.skipIf(!root)('sessionAffinity timeoutSeconds', () => {
  const affName = (mode: string) => `afft-${mode.slice(0, 3)}`;
  beforeAll(async () => {
    for (const m of MODES) await lab(['down', affName(m)]);
  });
  afterAll(async () => {
    for (const m of MODES) await lab(['down', affName(m)]);
  });

  for (const mode of MODES) {
    it(`${mode} mode: sticky within 3 s, forgotten after them (polled), then balanced afresh`, async () => {
      const L = affName(mode);
      const up = await lab(['up', 'affinity', '--name', L, '--set', `kubeProxy.mode=${mode}`, '--set', 'services.web.sessionAffinityTimeoutSeconds=3']);
      expect(up.exitCode, up.stderr).toBe(0);
      const rules = (await lab(['rules', L, 'node1'])).stdout;
      expect(rules).toMatch(mode === 'iptables' ? /--rcheck --seconds 3 --reap/ : /flags dynamic,timeout\s+timeout 3s/);
      const v = await lab(['verify', L, '--walkthrough', 'affinity-timeout', '--json']);
      const report = JSON.parse(v.stdout) as Report & { ms: number };
      const failed = report.paths.flatMap((p) => p.steps).filter((s) => s.status === 'fail');
      expect(failed, JSON.stringify(failed, null, 2)).toEqual([]);
      expect(v.exitCode).toBe(0);
      const expired = report.paths[1]!.steps[0]!.seen;
      const waited = Number(/forgotten after ([\d.]+) s/.exec(expired)?.[1]);
      // The kernel forgets the client about 3 s after it was last seen: not before, and the poll notices within a fraction of a second.
      expect(waited).toBeGreaterThanOrEqual(2);
      expect(waited).toBeLessThan(6);
      if (mode === 'iptables') expect(expired).toMatch(/counted 4 of 5 connections/);
      console.log(`affinity timeout (${mode}): ${expired}`);
      await lab(['down', L]);
    });
  }
});
