import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import type { KillResult } from '../../lab/api/pods.js';
import type { LabStatus } from '../../lab/api/status.js';
import type { LabState } from '../../lab/state/store.js';
import { execa } from 'execa';
import { lab, requireRoot, sh } from './helpers.js';
import { verifiedSteps } from './pod-network-runs.js';

/**
 * Issue 18, loadBalancer.mode bgp (MetalLB's BGP mode) against the real kernel: every node's
 * BIRD announces the LoadBalancer IP, the router installs one multipath route from BGP; lab kill
 * and revive withdraw and announce it, awaited by the verb; a dead speaker's route is withdrawn
 * by the router; one BIRD per node carries both the pod network's routes and the IP.
 */

const root = requireRoot();
const STATE = '/run/kube-packet-lab';
const names: string[] = [];
const routeTo = (name: string, to = '10.240.0.100') => sh('ip', ['-n', `${name}-router`, '-4', 'route', 'show', to]);
const birdsOf = async (name: string) => (await sh('ps', ['-eo', 'pid,args'])).split('\n').filter((l) => /\bbird -f /.test(l) && l.includes(`${STATE}/${name}/bird/`));
const stateOf = (name: string) => JSON.parse(readFileSync(join(STATE, name, 'state.json'), 'utf8')) as LabState;
const nextHops = (route: string) => [...route.matchAll(/(?:nexthop )?via (\S+)/g)].map((m) => m[1]).sort();

describe.skipIf(!root)('loadBalancer mode bgp against the real kernel', () => {
  afterAll(async () => {
    for (const name of names) await lab(['down', name]);
  });

  it('Local: both nodes announce, kill withdraws node2 (awaited, < 2 s), revive announces again, a dead speaker is withdrawn and started again by the next sync', async () => {
    const name = 'mlb-local';
    names.push(name);
    const up = await lab(['up', 'loadbalancer-local', '--name', name, '--set', 'loadBalancer.mode=bgp']);
    expect(up.exitCode, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/10\.240\.0\.100\/32 via 10\.240\.0\.4, 10\.240\.0\.5 \(proto bird\)/);
    const route = await routeTo(name);
    expect(route).toMatch(/^10\.240\.0\.100 proto bird /);
    expect(nextHops(route)).toEqual(['10.240.0.4', '10.240.0.5']);
    // No static route to the LB IP anywhere, and the router hashes on ports.
    expect((await sh('ip', ['-n', `${name}-router`, '-4', 'route', 'show', 'proto', 'boot'])).includes('10.240.0.100')).toBe(false);
    expect(await sh('ip', ['netns', 'exec', `${name}-router`, 'sysctl', '-n', 'net.ipv4.fib_multipath_hash_policy'])).toMatch(/^1/);
    // lab verify picks the mode's own walkthrough (loadbalancer-local-bgp): no health-check steps.
    expect((await verifiedSteps(name)).map((x) => x.title)).toContain('The router\'s route to the LB IP was learned by BGP (proto bird)');

    const killed = await lab(['kill', name, 'web-2', '--json']);
    expect(killed.exitCode, killed.stderr).toBe(0);
    const k = JSON.parse(killed.stdout) as KillResult;
    expect(k.announced!.changes).toEqual([{ ip: '10.240.0.100', node: 'node2', change: 'withdrawn' }]);
    expect(k.announced!.routes.map((r) => [r.settled, r.have])).toEqual([[true, ['10.240.0.4']]]);
    console.log(`bgp: router followed node2's withdrawal ${k.announced!.routes[0]!.ms} ms after lab kill reconfigured its BIRD`);
    expect(k.announced!.routes[0]!.ms).toBeLessThan(2000);
    expect(nextHops(await routeTo(name))).toEqual(['10.240.0.4']);
    await verifiedSteps(name, 'loadbalancer-local-bgp-unready');

    const revived = await lab(['revive', name, 'web-2']);
    expect(revived.exitCode, revived.stderr).toBe(0);
    expect(revived.stdout).toMatch(/MetalLB node2 announced 10\.240\.0\.100$/m);
    expect(nextHops(await routeTo(name))).toEqual(['10.240.0.4', '10.240.0.5']);

    // A speaker that dies: its session closes, the router withdraws its next hop, status says so.
    const node2 = stateOf(name).daemons!.find((d) => d.host === 'node2')!;
    process.kill(node2.pid, 'SIGKILL');
    expect(await until(async () => nextHops(await routeTo(name)).join() === '10.240.0.4', 4000)).toBe(true);
    const status = JSON.parse((await lab(['status', name, '--json'])).stdout) as LabStatus[];
    expect(status[0]!.daemons.find((d) => d.host === 'node2')!.running).toBe(false);
    expect(status[0]!.daemons.find((d) => d.host === 'router')!.sessions.find((s) => s.peer === 'node2')!.info).not.toMatch(/^Established/);
    // An endpoint change with that speaker dead starts it again (by pid, awaited until its session is up), then withdraws.
    const after = JSON.parse((await lab(['kill', name, 'web-2', '--json'])).stdout) as KillResult;
    expect(after.announced!.restarted.map((r) => `${r.host} ${r.name}`)).toEqual(['node2 bird']);
    const fresh = after.announced!.restarted[0]!.pid;
    expect(fresh).not.toBe(node2.pid);
    expect(stateOf(name).daemons!.find((d) => d.host === 'node2')!.pid).toBe(fresh);
    expect([after.announced!.notRunning, after.announced!.routes.map((r) => [r.settled, r.have])]).toEqual([[], [[true, ['10.240.0.4']]]]);
    // lab revive of a ready pod recovers a dead speaker too (there is nothing else to revive).
    expect((await lab(['revive', name, 'web-2'])).exitCode).toBe(0);
    process.kill(fresh, 'SIGKILL');
    expect(await until(async () => nextHops(await routeTo(name)).join() === '10.240.0.4', 4000)).toBe(true);
    const recovered = await lab(['revive', name, 'web-2']);
    expect(recovered.exitCode, recovered.stderr).toBe(0);
    expect(recovered.stdout).toMatch(/MetalLB bird in node2 was not running: started again \(pid \d+\), ready in \d+ ms/);
    expect(nextHops(await routeTo(name))).toEqual(['10.240.0.4', '10.240.0.5']);
    expect((await lab(['revive', name, 'web-2'])).exitCode).toBe(5); // all well again: nothing to revive
    expect((await lab(['down', name])).exitCode).toBe(0);
    expect(await birdsOf(name)).toEqual([]);
  });

  it('Cluster with podNetwork bgp, nftables: one BIRD per node carries its pod CIDR and the LB IP; the walkthrough passes', async () => {
    const name = 'mlb-both';
    names.push(name);
    const up = await lab(['up', 'loadbalancer', '--name', name, '--set', 'loadBalancer.mode=bgp', '--set', 'podNetwork.mode=bgp', '--set', 'kubeProxy.mode=nftables']);
    expect(up.exitCode, up.stderr).toBe(0);
    expect(await birdsOf(name)).toHaveLength(3);
    const routes = await sh('ip', ['-n', `${name}-router`, '-4', 'route', 'show']);
    expect(routes).toMatch(/^10\.244\.1\.0\/24 via 10\.240\.0\.5 dev br-nodes proto bird /m);
    expect(nextHops(await routeTo(name))).toEqual(['10.240.0.4', '10.240.0.5']);
    await verifiedSteps(name, 'loadbalancer-bgp');
    // Cluster: a node without a pod still announces while the Service has a ready endpoint anywhere.
    const killed = await lab(['kill', name, 'web-2', '--json']);
    expect((JSON.parse(killed.stdout) as KillResult).announced!.changes).toEqual([]);
    const last = await lab(['kill', name, 'web-1', '--json']);
    const k = JSON.parse(last.stdout) as KillResult;
    expect(k.announced!.changes.map((c) => `${c.node} ${c.change}`).sort()).toEqual(['node1 withdrawn', 'node2 withdrawn']);
    expect(await routeTo(name)).toBe('');
    expect((await lab(['down', name])).exitCode).toBe(0);
    expect(await birdsOf(name)).toEqual([]);
  });
});

describe.skipIf(!root)('loadBalancer mode l2 against the real kernel', () => {
  afterAll(async () => {
    await lab(['down', 'mlb-l2']);
  });

  it('Local: the elected leader answers ARP with its MAC; after lab kill the new leader sends a gratuitous ARP and the router follows', async () => {
    const name = 'mlb-l2';
    const up = await lab(['up', 'loadbalancer-local', '--name', name, '--set', 'loadBalancer.mode=l2']);
    expect(up.exitCode, up.stderr).toBe(0);
    const macOf = async (node: string) => /link\/ether (\S+)/.exec(await sh('ip', ['-n', `${name}-${node}`, 'link', 'show', 'eth0']))![1];
    const [mac1, mac2] = [await macOf('node1'), await macOf('node2')];
    // The IP is never an address of a node, and the router has no route to it but its subnet's.
    for (const node of ['node1', 'node2']) expect(await sh('ip', ['-n', `${name}-${node}`, 'addr'])).not.toContain('10.240.0.100');
    expect(await routeTo(name)).toBe('');
    await verifiedSteps(name, 'loadbalancer-local-l2');
    expect(await sh('ip', ['-n', `${name}-router`, 'neigh', 'show', '10.240.0.100'])).toContain(`lladdr ${mac1}`);

    // Watch the node network's ARP from the router while node1 loses its pod.
    const arp = execa('ip', ['netns', 'exec', `${name}-router`, 'tcpdump', '-l', '-n', '-e', '-i', 'br-nodes', 'arp'], { reject: false, all: true });
    let seen = '';
    arp.all!.on('data', (d: Buffer) => (seen += String(d)));
    expect(await until(async () => seen.includes('listening on'), 5000)).toBe(true);
    const killed = await lab(['kill', name, 'web-1', '--json']);
    expect(killed.exitCode, killed.stderr).toBe(0);
    const k = JSON.parse(killed.stdout) as KillResult;
    expect(k.announced!.changes.map((c) => `${c.node} ${c.change}`).sort()).toEqual(['node1 withdrawn', 'node2 announced']);
    expect(k.announced!.neighbours.map((n) => [n.settled, n.have])).toEqual([[true, mac2]]);
    console.log(`l2: the router's neighbour entry moved to node2 ${k.announced!.neighbours[0]!.ms} ms after lab kill signalled the speakers`);
    expect(k.announced!.neighbours[0]!.ms).toBeLessThan(2000);
    expect(await until(async () => new RegExp(`${mac2} > ff:ff:ff:ff:ff:ff.*10\\.240\\.0\\.100`).test(seen), 2000), seen).toBe(true);
    arp.kill('SIGTERM');
    await arp;
    const failover = await verifiedSteps(name, 'loadbalancer-local-l2-failover');
    expect(failover.find((x) => x.title.startsWith('At the takeover'))!.seen).toContain(`gratuitous ARP 10.240.0.100 is-at ${mac2}`);
    // A dead ARP speaker is started again by the next sync, ready before the router is awaited.
    const node2 = stateOf(name).daemons!.find((d) => d.host === 'node2' && d.name === 'arp-speaker')!;
    process.kill(node2.pid, 'SIGKILL');
    const revived = JSON.parse((await lab(['revive', name, 'web-1', '--json'])).stdout) as KillResult;
    expect(revived.announced!.restarted.map((r) => `${r.host} ${r.name}`)).toEqual(['node2 arp-speaker']);
    expect(revived.announced!.neighbours.map((n) => [n.settled, n.have])).toEqual([[true, mac1]]);
    expect((await lab(['down', name])).exitCode).toBe(0);
    expect((await sh('ps', ['-eo', 'args'])).split('\n').filter((l) => l.includes(`${STATE}/${name}/l2/`))).toEqual([]);
  });
});

describe.skipIf(!root)('every load balancer walkthrough in both proxy modes', () => {
  const names = ['mlb-all-iptables', 'mlb-all-nftables'];
  afterAll(async () => {
    for (const name of names) await lab(['down', name]);
  });

  // lab verify with no --walkthrough picks <scenario>-<mode>.walkthrough.yaml; Local's follow-up walkthrough after lab kill.
  const runs: { scenario: string; mode: string; kill?: string; then?: string }[] = [
    { scenario: 'loadbalancer', mode: 'bgp' },
    { scenario: 'loadbalancer', mode: 'l2' },
    { scenario: 'loadbalancer-local', mode: 'bgp', kill: 'web-2', then: 'loadbalancer-local-bgp-unready' },
    { scenario: 'loadbalancer-local', mode: 'l2', kill: 'web-1', then: 'loadbalancer-local-l2-failover' },
  ];
  for (const proxy of ['iptables', 'nftables']) {
    const name = `mlb-all-${proxy}`;
    it(`${proxy}: ${runs.map((r) => `${r.scenario} ${r.mode}${r.then ? ` (+ ${r.then})` : ''}`).join(', ')}`, { timeout: 600_000 }, async () => {
      for (const r of runs) {
        const up = await lab(['up', r.scenario, '--name', name, '--set', `loadBalancer.mode=${r.mode}`, '--set', `kubeProxy.mode=${proxy}`]);
        expect(up.exitCode, up.stderr).toBe(0);
        const steps = await verifiedSteps(name);
        if (r.mode === 'l2') {
          // The ARP step judged the router's who-has and the leader's answer, from the capture.
          expect(steps.find((x) => x.expected.startsWith('who-has 10.240.0.100 from router'))!.seen).toMatch(/^who-has 10\.240\.0\.100 tell 10\.240\.0\.1 .*is-at \S+ \(node1\)/);
          expect(steps.find((x) => x.title.startsWith('Every connection entered node1'))!.status).toBe('pass');
        }
        if (r.kill) {
          const k = JSON.parse((await lab(['kill', name, r.kill, '--json'])).stdout) as KillResult;
          const follow = [...k.announced!.routes, ...k.announced!.neighbours];
          expect(follow.every((f) => f.settled)).toBe(true);
          console.log(`${proxy} ${r.scenario} ${r.mode}: the router followed lab kill ${r.kill} in ${follow.map((f) => f.ms).join(', ')} ms`);
          await verifiedSteps(name, r.then);
        }
        expect((await lab(['down', name])).exitCode).toBe(0);
      }
    });
  }
});

/** Poll `ok` every 20 ms until it holds or `withinMs` passes. */
async function until(ok: () => Promise<boolean>, withinMs: number): Promise<boolean> {
  const deadline = performance.now() + withinMs;
  while (performance.now() < deadline) {
    if (await ok()) return true;
    await sleep(20);
  }
  return ok();
}
