import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostSnapshot, lab, labProcesses, namespaces, requireRoot } from './helpers.js';

const root = requireRoot();
const LABS = ['np-a', 'np-b', 'crash', 'lost', 'nodeport'];

describe.skipIf(!root)('lab lifecycle: coexistence, crashes, bad input', () => {
  let before: Record<string, string>;
  beforeAll(async () => {
    for (const l of LABS) await lab(['down', l]);
    before = await hostSnapshot();
  });
  afterAll(async () => {
    for (const l of LABS) await lab(['down', l]);
  });

  it('runs two copies of a scenario side by side, each verified, each removed alone', async () => {
    expect((await lab(['up', 'nodeport', '--name', 'np-a'])).exitCode).toBe(0);
    expect((await lab(['up', 'nodeport', '--name', 'np-b'])).exitCode).toBe(0);
    const ns = await namespaces();
    expect(ns.filter((n) => n.startsWith('np-a-'))).toHaveLength(6);
    expect(ns.filter((n) => n.startsWith('np-b-'))).toHaveLength(6);
    expect((await lab(['verify', 'np-a'])).exitCode).toBe(0);
    expect((await lab(['verify', 'np-b'])).exitCode).toBe(0);

    expect((await lab(['down', 'np-a'])).exitCode).toBe(0);
    expect((await namespaces()).filter((n) => n.startsWith('np-a-'))).toEqual([]);
    // The other lab is untouched and still works.
    expect((await namespaces()).filter((n) => n.startsWith('np-b-'))).toHaveLength(6);
    expect((await lab(['verify', 'np-b'])).exitCode).toBe(0);
    expect((await lab(['down', 'np-b'])).exitCode).toBe(0);
  });

  it('refuses to bring up a lab that is already up', async () => {
    expect((await lab(['up', 'nodeport', '--name', 'np-a'])).exitCode).toBe(0);
    const again = await lab(['up', 'nodeport', '--name', 'np-a']);
    expect(again.exitCode).toBe(5);
    expect(again.stderr).toMatch(/already up/);
    expect((await lab(['down', 'np-a'])).exitCode).toBe(0);
  });

  for (const stage of ['namespaces', 'links', 'kube-proxy rules', 'workloads']) {
    it(`cleans up after an up killed right after "${stage}"`, async () => {
      const killed = await lab(['up', 'nodeport', '--name', 'crash'], { env: { LAB_CRASH_AFTER: stage } });
      expect(killed.exitCode).not.toBe(0);
      expect((await namespaces()).filter((n) => n.startsWith('crash-'))).toHaveLength(6);
      const d = await lab(['down', 'crash']);
      expect(d.exitCode).toBe(0);
      expect((await namespaces()).filter((n) => n.startsWith('crash-'))).toEqual([]);
      expect(await labProcesses('crash')).toEqual([]);
    });
  }

  it('cleans up a lab whose state file was lost, by its ownership marker', async () => {
    expect((await lab(['up', 'nodeport', '--name', 'lost'])).exitCode).toBe(0);
    rmSync('/run/kube-packet-lab/lost', { recursive: true, force: true });
    expect((await namespaces()).filter((n) => n.startsWith('lost-'))).toHaveLength(6);
    const d = await lab(['down', 'lost']);
    expect(d.exitCode).toBe(0);
    expect((await namespaces()).filter((n) => n.startsWith('lost-'))).toEqual([]);
    expect(await labProcesses('lost')).toEqual([]);
  });

  it('never deletes a namespace it did not make, even one with its prefix', async () => {
    await execIp(['netns', 'add', 'lost-not-ours']);
    try {
      expect((await lab(['down', 'lost'])).exitCode).toBe(0);
      expect(await namespaces()).toContain('lost-not-ours');
    } finally {
      await execIp(['netns', 'del', 'lost-not-ours']);
    }
  });

  it('refuses a broken topology before creating anything, naming file, field and line', async () => {
    const nsBefore = await namespaces();
    const r = await lab(['up', 'test/fixtures/bad/address-outside-subnet.yaml']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/test\/fixtures\/bad\/address-outside-subnet\.yaml:\d+: nodes\[\d\]\.address: .* is not inside network/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(await namespaces()).toEqual(nsBefore);
  });

  it('refuses an unknown scenario and a bad argument with exit code 2', async () => {
    const r = await lab(['up', 'no-such-scenario']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/no scenario named "no-such-scenario"/);
    const bad = await lab(['rules', 'nodeport', 'node1', '--table', 'raw']);
    expect(bad.exitCode).toBe(2);
    const usage = await lab(['up']);
    expect(usage.exitCode).toBe(2);
  });

  it('refuses to run without root, with exit code 3 and nothing created', async () => {
    const nsBefore = await namespaces();
    const { execa } = await import('execa');
    const { CLI } = await import('./helpers.js');
    const r = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'up', 'nodeport'], { reject: false });
    expect(r.exitCode).toBe(3);
    expect(String(r.stderr)).toMatch(/needs root/);
    expect(await namespaces()).toEqual(nsBefore);
  });

  it('left the host network namespace exactly as it found it', async () => {
    expect(await hostSnapshot()).toEqual(before);
  });
});

async function execIp(args: string[]): Promise<void> {
  const { execa } = await import('execa');
  await execa('ip', args);
}
