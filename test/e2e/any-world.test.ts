import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
    expect(result.paths.length).toBe(18); // 12, and the localhost NodePort from each node to each api pod
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

  it('lab apply adds a Service and changes endpoints with a partial sync; refuses what needs down and up', async () => {
    const text = readFileSync(FILE, 'utf8');
    const edited = join(out, 'three.yaml');
    // api-2 fails its readiness probe; a new Service selects the tool pod (its workload now listens on 9090).
    writeFileSync(
      edited,
      text.replace('{ name: api-2, node: node-b, address: 10.50.2.5, labels: { app: api } }', '{ name: api-2, node: node-b, address: 10.50.2.5, labels: { app: api }, ready: false }') +
        '  - { name: tools, type: ClusterIP, clusterIP: 10.96.0.20, selector: { app: tool }, ports: [{ port: 81, targetPort: 9090 }] }\n',
    );
    const rulesBefore = await sh('ip', ['netns', 'exec', 'three-node-a', 'iptables-save', '-t', 'nat']);
    const other = join(out, 'other.yaml');
    writeFileSync(other, text.replace('lab: three', 'lab: four'));
    const moved = join(out, 'moved.yaml');
    writeFileSync(moved, text.replace('address: 192.168.50.13', 'address: 192.168.50.14').replace('via: 192.168.50.13', 'via: 192.168.50.14'));
    for (const [file, says] of [[other, 'for lab "four"'], [moved, 'nodes changed'], [join(out, 'missing.yaml'), 'no such file']] as const) {
      const r = await lab(['apply', 'three', file]);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toContain(says);
    }
    const unchanged = await sh('ip', ['netns', 'exec', 'three-node-a', 'iptables-save', '-t', 'nat']);
    expect(unchanged.split('\n').filter((l) => l.startsWith('-A'))).toEqual(rulesBefore.split('\n').filter((l) => l.startsWith('-A')));

    // Atomic: an apply failing after it added a pod and switched the state leaves both as they were.
    const grown = join(out, 'grown.yaml');
    writeFileSync(grown, readFileSync(edited, 'utf8').replace('pods:\n', 'pods:\n  - { name: api-3, node: node-c, address: 10.50.3.6, labels: { app: api } }\n'));
    const nsBefore = (await sh('ip', ['netns', 'list'])).split('\n').filter((l) => l.startsWith('three-')).sort();
    const stateBefore = (await lab(['status', 'three', '--json'])).stdout;
    const failed = await lab(['apply', 'three', grown], { env: { LAB_APPLY_FAIL: 'sync' }, timeout: 120_000 });
    expect(failed.exitCode, failed.stderr).toBe(4);
    expect((await sh('ip', ['netns', 'list'])).split('\n').filter((l) => l.startsWith('three-')).sort()).toEqual(nsBefore);
    expect((await lab(['status', 'three', '--json'])).stdout).toEqual(stateBefore);
    const afterFailure = await sh('ip', ['netns', 'exec', 'three-node-a', 'iptables-save', '-t', 'nat']);
    expect(afterFailure.split('\n').filter((l) => l.startsWith('-A'))).toEqual(rulesBefore.split('\n').filter((l) => l.startsWith('-A')));

    const applied = await lab(['apply', 'three', edited, '--json'], { timeout: 120_000 });
    expect(applied.exitCode, applied.stderr).toBe(0);
    const r = JSON.parse(applied.stdout) as { diff: { services: { added: string[] }; pods: { changed: string[]; restarted: string[] } }; rules: { sync: string; services: number }[] };
    expect(r.diff.services.added).toEqual(['default/tools']);
    expect(r.diff.pods.changed).toEqual(['api-2']);
    expect(r.diff.pods.restarted).toEqual(['tool']);
    expect(r.rules.map((n) => `${n.sync} ${n.services}`)).toEqual(['partial 2', 'partial 2', 'partial 2']);

    // The lab now runs the edited file: its derived walkthrough (tools included, api-2 excluded) passes.
    const v = await lab(['verify', 'three', '--json', '--out', join(out, 'applied')], { timeout: 240_000 });
    const result = JSON.parse(v.stdout) as { paths: { name: string; steps: { status: string; title: string; seen: string }[] }[] };
    expect(result.paths.flatMap((p) => p.steps.filter((s) => s.status === 'fail').map((s) => `${p.name}: ${s.title}: ${s.seen}`))).toEqual([]);
    expect(result.paths.some((p) => p.name.includes('default/tools'))).toBe(true);
    expect(result.paths.some((p) => p.name.includes('-> api-2'))).toBe(false);
    expect(v.exitCode).toBe(0);
  }, 600_000);
});
