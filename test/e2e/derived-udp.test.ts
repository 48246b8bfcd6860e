import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lab, requireRoot, ROOT, sh } from './helpers.js';

/**
 * A user's world whose Services speak UDP (a game NodePort, the cluster DNS behind kube-dns)
 * verifies by its derived walkthrough in both proxy modes: UDP steps proven by captures,
 * conntrack's UDP entries and the DNAT, and in iptables mode a localhost NodePort path on each
 * node. Once the UDP DNAT to one pod is gone, verify fails on the UDP paths to it; with
 * route_localnet off on a node, on that node's localhost paths.
 */
const root = requireRoot();
const FILE = join(ROOT, 'test', 'fixtures', 'worlds', 'udp-game.yaml');
const LAB = 'udpgame';

interface Result {
  passed: number;
  failed: number;
  paths: { name: string; steps: { status: string; title: string; seen: string }[] }[];
}

const failures = (r: Result) => r.paths.flatMap((p) => p.steps.filter((s) => s.status === 'fail').map((s) => `${p.name}: ${s.title}: ${s.seen}`));
const failedPaths = (r: Result) => r.paths.filter((p) => p.steps.some((s) => s.status === 'fail')).map((p) => p.name);
const inNode = (node: string, ...args: string[]) => sh('ip', ['netns', 'exec', `${LAB}-${node}`, ...args]);

describe.skipIf(!root)('a UDP world verified by its derived walkthrough', () => {
  const out = mkdtempSync(join(tmpdir(), 'lab-udpworld-'));
  let runs = 0;
  const verify = async () => {
    const r = await lab(['verify', LAB, '--json', '--out', join(out, String(runs++))], { timeout: 240_000 });
    return { exitCode: r.exitCode, result: JSON.parse(r.stdout) as Result, stderr: r.stderr };
  };
  afterAll(async () => {
    await lab(['down', LAB]);
    rmSync(out, { recursive: true, force: true });
  });

  it('iptables mode: UDP and DNS paths and localhost NodePorts pass; a removed UDP DNAT and route_localnet=0 fail by name', async () => {
    await lab(['down', LAB]);
    const up = await lab(['up', FILE], { timeout: 120_000 });
    expect(up.exitCode, up.stderr).toBe(0);

    const good = await verify();
    expect(failures(good.result)).toEqual([]);
    expect(good.exitCode).toBe(0);
    const names = good.result.paths.map((p) => p.name);
    expect(names.filter((n) => n.startsWith('default/game:game ')).length).toBe(12);
    expect(names.filter((n) => n.startsWith('kube-system/kube-dns:dns ')).length).toBe(2);
    expect(names.filter((n) => n.includes(' localhost nodePort from ')).length).toBe(6);

    // route_localnet=0 on node-a: the kernel will not route a 127.0.0.1 source out to a pod.
    const broken = await lab(['break', LAB, 'route-localnet']);
    expect(broken.exitCode, broken.stderr).toBe(0);
    const localnet = await verify();
    expect(localnet.exitCode).toBe(1);
    const failedLocalnet = failedPaths(localnet.result).filter((n) => n !== 'fault probes');
    expect(failedLocalnet.length).toBeGreaterThan(0);
    expect(failedLocalnet.every((n) => n.includes(' localhost nodePort from node-a to 127.0.0.1:'))).toBe(true);
    // Both protocols' localhost paths of node-a, none of node-b's.
    expect(failedLocalnet.some((n) => n.startsWith('default/game:game '))).toBe(true);
    expect(failedLocalnet.some((n) => n.startsWith('default/web:http '))).toBe(true);
    expect((await lab(['repair', LAB])).exitCode).toBe(0);

    // Delete node-a's UDP DNAT to game-1 (10.60.1.5:7777).
    const save = await inNode('node-a', 'iptables-save', '-t', 'nat');
    const rule = save.split('\n').find((l) => l.startsWith('-A KUBE-SEP-') && l.includes('-p udp') && l.includes('--to-destination 10.60.1.5:7777'));
    expect(rule).toBeDefined();
    await inNode('node-a', 'iptables', '-t', 'nat', '-D', rule!.split(' ')[1]!, '2');
    expect(await inNode('node-a', 'iptables-save', '-t', 'nat')).not.toContain(rule);
    const bad = await verify();
    expect(bad.exitCode).toBe(1);
    const failed = failedPaths(bad.result);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((n) => n.startsWith('default/game:game ') && n.endsWith('-> game-1'))).toBe(true);
    await lab(['down', LAB]);
  }, 900_000);

  it('nftables mode: UDP and DNS paths pass (no localhost NodePorts); a removed UDP dnat fails by name', async () => {
    await lab(['down', LAB]);
    const up = await lab(['up', FILE, '--set', 'kubeProxy.mode=nftables'], { timeout: 120_000 });
    expect(up.exitCode, up.stderr).toBe(0);
    const good = await verify();
    expect(failures(good.result)).toEqual([]);
    expect(good.exitCode).toBe(0);
    const names = good.result.paths.map((p) => p.name);
    expect(names.filter((n) => n.startsWith('default/game:game ')).length).toBe(8);
    expect(names.filter((n) => n.startsWith('kube-system/kube-dns:dns ')).length).toBe(2);
    expect(names.some((n) => n.includes('localhost'))).toBe(false);

    // Delete node-a's endpoint chain rule that DNATs UDP to game-1.
    const listing = await inNode('node-a', 'nft', '-a', 'list', 'table', 'ip', 'kube-proxy');
    let chain = '';
    let handle = '';
    for (const line of listing.split('\n')) {
      const c = /^\s*chain (\S+) \{/.exec(line);
      if (c) chain = c[1]!;
      const h = /dnat (?:ip )?to 10\.60\.1\.5:7777 # handle (\d+)/.exec(line);
      if (h && line.includes('udp')) {
        handle = h[1]!;
        break;
      }
    }
    expect(handle).not.toBe('');
    await inNode('node-a', 'nft', 'delete', 'rule', 'ip', 'kube-proxy', chain, 'handle', handle);
    const bad = await verify();
    expect(bad.exitCode).toBe(1);
    const failed = failedPaths(bad.result);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((n) => n.startsWith('default/game:game ') && n.endsWith('-> game-1'))).toBe(true);
  }, 900_000);
});
