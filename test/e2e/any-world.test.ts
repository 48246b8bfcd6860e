import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lab, requireRoot, ROOT, sh } from './helpers.js';

/**
 * A user's own world (three nodes, its own addresses, no walkthrough file) is verified by the
 * walkthrough lab verify derives from its topology; once one of kube-proxy's rules is deleted
 * inside a node, the same verify fails, because the expectation came from the topology.
 */
const root = requireRoot();
const FILE = join(ROOT, 'test', 'fixtures', 'worlds', 'three-nodes.yaml');

describe.skipIf(!root)('a world without a walkthrough', () => {
  const out = mkdtempSync(join(tmpdir(), 'lab-anyworld-'));
  afterAll(async () => {
    await lab(['down', 'three']);
    rmSync(out, { recursive: true, force: true });
  });

  it('verifies by its derived walkthrough, and fails once a rule is removed', async () => {
    await lab(['down', 'three']);
    const up = await lab(['up', FILE], { timeout: 120_000 });
    expect(up.exitCode, up.stderr).toBe(0);
    // The hint runs as printed.
    expect(up.stdout).toContain('next: lab verify three; lab down three');

    const good = await lab(['verify', 'three', '--json', '--out', join(out, 'good')], { timeout: 240_000 });
    const result = JSON.parse(good.stdout) as { passed: number; failed: number; paths: { name: string; steps: { status: string; title: string; seen: string }[] }[] };
    const failures = result.paths.flatMap((p) => p.steps.filter((s) => s.status === 'fail').map((s) => `${p.name}: ${s.title}: ${s.seen}`));
    expect(failures).toEqual([]);
    expect(good.exitCode).toBe(0);
    expect(result.paths.length).toBe(12);
    expect(result.passed).toBeGreaterThan(60);

    // Delete node-b's DNAT to api-1 (10.50.1.5:8080): its NodePort can no longer reach api-1.
    const ns = 'three-node-b';
    const save = await sh('ip', ['netns', 'exec', ns, 'iptables-save', '-t', 'nat']);
    const rule = save.split('\n').find((l) => l.startsWith('-A KUBE-SEP-') && l.includes('--to-destination 10.50.1.5:8080'));
    expect(rule).toBeDefined();
    // Its chain holds two rules: the hairpin's masquerade mark, then the DNAT.
    const chain = rule!.split(' ')[1]!;
    await sh('ip', ['netns', 'exec', ns, 'iptables', '-t', 'nat', '-D', chain, '2']);
    expect(await sh('ip', ['netns', 'exec', ns, 'iptables-save', '-t', 'nat'])).not.toContain(rule);
    const bad = await lab(['verify', 'three', '--json', '--out', join(out, 'bad')], { timeout: 240_000 });
    expect(bad.exitCode).toBe(1);
    const broken = JSON.parse(bad.stdout) as typeof result;
    const failed = broken.paths.filter((p) => p.steps.some((s) => s.status === 'fail')).map((p) => p.name);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((n) => n.includes('api-1'))).toBe(true);
  }, 600_000);
});
