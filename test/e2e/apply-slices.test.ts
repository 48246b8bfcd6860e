import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lab, requireRoot, ROOT, sh } from './helpers.js';

/**
 * lab apply with hand-written EndpointSlices, on the real kernel (upstream's TestNodePorts world,
 * test/fixtures/upstream-worlds/node-ports.yaml): the slice's port moves to 8080 and a second
 * endpoint with a node name joins; the rules, the workloads and lab endpoints follow, and the
 * derived walkthrough of the applied file verifies. Then a slice-only condition change (the
 * endpoint serving-terminating) is a change of its Service too.
 */
const root = requireRoot();
const FILE = join(ROOT, 'test', 'fixtures', 'upstream-worlds', 'node-ports.yaml');
const natOf = async (node: string) => (await sh('ip', ['netns', 'exec', `upnp-${node}`, 'iptables-save', '-t', 'nat'])).split('\n');

describe.skipIf(!root)('lab apply with EndpointSlices', () => {
  const out = mkdtempSync(join(tmpdir(), 'lab-apply-slices-'));
  afterAll(async () => {
    await lab(['down', 'upnp']);
    rmSync(out, { recursive: true, force: true });
  });

  it('moves the slice to another port and adds an endpoint; then changes its conditions alone', async () => {
    await lab(['down', 'upnp']);
    const up = await lab(['up', FILE], { timeout: 120_000 });
    expect(up.exitCode, up.stderr).toBe(0);
    const text = readFileSync(FILE, 'utf8');
    const edited = join(out, 'node-ports.yaml');
    const moved = text.replace('ports: [{ name: p80, port: 80 }]', 'ports: [{ name: p80, port: 8080 }]').replace('      - { address: 10.180.0.1 }\n', '      - { address: 10.180.0.1 }\n      - { address: 10.180.1.2, nodeName: other-node }\n');
    expect(moved).not.toEqual(text);
    writeFileSync(edited, moved);
    const applied = await lab(['apply', 'upnp', edited, '--json'], { timeout: 120_000 });
    expect(applied.exitCode, applied.stderr).toBe(0);
    const r = JSON.parse(applied.stdout) as { diff: { services: { changed: string[] }; pods: { restarted: string[] } } };
    expect(r.diff.services.changed).toEqual(['ns1/svc1']);
    expect(r.diff.pods.restarted.sort()).toEqual(['ep-1', 'sender']);
    const dnat = (await natOf('test-node')).filter((l) => l.includes('-j DNAT')).map((l) => l.split(' ').at(-1)).sort();
    expect(dnat).toEqual(['10.180.0.1:8080', '10.180.1.2:8080']);
    const ss = await sh('ip', ['netns', 'exec', 'upnp-sender', 'ss', '-Htln']);
    expect(ss).toContain(':8080');

    const eps = JSON.parse((await lab(['endpoints', 'upnp', '--json'])).stdout) as { services: { service: string; endpoints: { address: string; node: string; slice?: string }[] }[] };
    expect(eps.services[0]!.endpoints.map((e) => `${e.address} ${e.node || '-'} ${e.slice}`)).toEqual(['10.180.0.1:8080 - svc1-1', '10.180.1.2:8080 other-node svc1-1']);
    const human = await lab(['endpoints', 'upnp']);
    expect(human.stdout).toMatch(/10\.180\.0\.1:8080\s+ep-1\s+\(no node\)/);

    const v = await lab(['verify', 'upnp', '--json', '--out', join(out, 'applied')], { timeout: 400_000 });
    const result = JSON.parse(v.stdout) as { paths: { name: string; steps: { status: string; title: string; seen: string }[] }[] };
    expect(result.paths.flatMap((p) => p.steps.filter((s) => s.status === 'fail').map((s) => `${p.name}: ${s.title}: ${s.seen}`))).toEqual([]);
    expect(result.paths.some((p) => p.name.endsWith('-> sender'))).toBe(true);
    expect(v.exitCode).toBe(0);

    // Only a condition in the slice: sender's endpoint not ready, not serving: no rule sends to it.
    // Edited in place, as a user does: the lab keeps its own copy of the file it applied, so it still
    // runs the old slice until this apply (and the verbs before it work from that copy).
    writeFileSync(edited, moved.replace('{ address: 10.180.1.2, nodeName: other-node }', '{ address: 10.180.1.2, nodeName: other-node, ready: false, serving: false }'));
    const stillOld = JSON.parse((await lab(['endpoints', 'upnp', '--json'])).stdout) as typeof eps;
    expect(stillOld.services[0]!.endpoints.map((e) => e.address)).toEqual(['10.180.0.1:8080', '10.180.1.2:8080']);
    const again = await lab(['apply', 'upnp', edited, '--json'], { timeout: 120_000 });
    expect(again.exitCode, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as typeof r).diff.services.changed).toEqual(['ns1/svc1']);
    expect((await natOf('test-node')).filter((l) => l.includes('-j DNAT')).map((l) => l.split(' ').at(-1))).toEqual(['10.180.0.1:8080']);
    await lab(['down', 'upnp']);
  }, 900_000);
});
