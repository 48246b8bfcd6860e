import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab, requireRoot } from './helpers.js';
import type { EndpointChangeResult } from '../../lab/api/pods.js';

/**
 * kube-proxy's conntrack reconciler (v1.32+) against the real kernel, in both proxy modes: after
 * every endpoint sync, whatever it was for, a UDP entry to the kube-dns ClusterIP whose reply
 * comes from no serving endpoint is deleted; one whose reply comes from the serving endpoint
 * stays; and DNS through the kube-dns Service keeps working across scale and kill.
 */
const root = requireRoot();
const DNS = '172.31.0.10';
const COREDNS = '10.244.1.10';
const FRONTEND = '10.244.0.10';

/** An entry as `conntrack -I` plants it on node1: the frontend's datagram to the kube-dns ClusterIP, answered by `replySrc`. */
async function plant(labName: string, sport: number, replySrc: string, replySport = 53): Promise<void> {
  const args = ['-I', '-p', 'udp', '-s', FRONTEND, '-d', DNS, '--sport', String(sport), '--dport', '53', '-r', replySrc, '-q', FRONTEND, '--reply-port-src', String(replySport), '--reply-port-dst', String(sport), '-t', '120', '-u', 'SEEN_REPLY'];
  const r = await execa('ip', ['netns', 'exec', `${labName}-node1`, 'conntrack', ...args], { reject: false });
  expect(r.exitCode, String(r.stderr)).toBe(0);
}

/** The source ports of node1's UDP entries to the kube-dns ClusterIP that are still there. */
async function entriesLeft(labName: string, sports: number[]): Promise<number[]> {
  const r = await execa('ip', ['netns', 'exec', `${labName}-node1`, 'conntrack', '-L', '-p', 'udp', '--orig-dst', DNS], { reject: false });
  return sports.filter((p) => String(r.stdout).includes(`sport=${p} dport=53`));
}

async function change(args: string[]): Promise<EndpointChangeResult> {
  const r = await lab([...args, '--json']);
  expect(r.exitCode, `lab ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as EndpointChangeResult;
}

async function resolves(labName: string): Promise<string | undefined> {
  const r = await execa('ip', ['netns', 'exec', `${labName}-frontend`, 'getent', 'ahostsv4', 'web.default.svc.cluster.local'], { reject: false });
  return r.exitCode === 0 ? String(r.stdout).split(/\s+/)[0] : undefined;
}

describe.skipIf(!root).each(['iptables', 'nftables'])('conntrack reconciler, %s mode', (mode) => {
  const LAB = `ct-${mode.slice(0, 3)}`;
  beforeAll(async () => {
    await lab(['down', LAB]);
    const up = await lab(['up', 'clusterip', '--name', LAB, '--set', `kubeProxy.mode=${mode}`]);
    expect(up.exitCode, up.stderr).toBe(0);
  });
  afterAll(async () => {
    await lab(['down', LAB]);
  });

  it('after each sync (scale, kill, kill --terminating, revive) a stale entry is gone, the serving one stays, DNS answers', async () => {
    let sport = 40000;
    for (const step of [['scale', LAB, 'web=3'], ['kill', LAB, 'web-1'], ['kill', LAB, 'web-2', '--terminating'], ['revive', LAB, 'web-1'], ['scale', LAB, 'web=2']]) {
      const [stale, wrongPort, good] = [sport++, sport++, sport++];
      await plant(LAB, stale, '10.244.1.99'); // no endpoint at all
      await plant(LAB, wrongPort, COREDNS, 5353); // the endpoint's address, not its port
      await plant(LAB, good, COREDNS);
      const r = await change(step);
      expect(await entriesLeft(LAB, [stale, wrongPort, good]), step.join(' ')).toEqual([good]);
      expect(r.udpFlushed.filter((f) => f.node === 'node1').map((f) => [f.frontend, f.endpoint]).sort()).toEqual([
        [`${DNS}:53`, `${COREDNS}:5353`],
        [`${DNS}:53`, '10.244.1.99:53'],
      ]);
      expect(await resolves(LAB), step.join(' ')).toBe('172.31.0.5');
    }
  });

  it('with kube-dns scaled to zero v1.34 keeps the entries; the sync that brings coredns back deletes the stale one and DNS answers again', async () => {
    await plant(LAB, 41000, '10.244.1.99');
    const killed = await change(['kill', LAB, 'coredns']);
    expect(killed.udpFlushed).toEqual([]);
    expect(await entriesLeft(LAB, [41000])).toEqual([41000]);
    expect(await resolves(LAB)).toBeUndefined();
    const revived = await change(['revive', LAB, 'coredns']);
    expect(revived.udpFlushed.map((f) => f.endpoint)).toContain('10.244.1.99:53');
    expect(await entriesLeft(LAB, [41000])).toEqual([]);
    expect(await resolves(LAB)).toBe('172.31.0.5');
  });
});
