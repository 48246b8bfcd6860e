import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePcap } from '../../lab/capture/pcap.js';
import { lab, requireRoot, sh, startLab } from './helpers.js';

const root = requireRoot();
const LAB = 'cap';

/** Start `lab capture`, resolve once it says it is capturing. */
function startCapture(args: string[]) {
  const child = startLab(['capture', LAB, ...args]);
  const ready = new Promise<void>((resolve) => child.stderr!.on('data', (d: Buffer) => d.toString().includes('capturing on') && resolve()));
  return { child, ready };
}

async function noTcpdumpLeft(): Promise<void> {
  const alive = (await sh('ps', ['-eo', 'stat=,args='])).split('\n').filter((l) => !l.trim().startsWith('Z') && /\btcpdump\b/.test(l) && l.includes(`${LAB}-`));
  expect(alive).toEqual([]);
}

describe.skipIf(!root)('lab capture against the real kernel', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lab-capture-'));
    expect((await lab(['up', 'nodeport', '--name', LAB])).exitCode).toBe(0);
  });
  afterAll(async () => {
    await lab(['down', LAB]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('merges four points into one time-ordered stream, prefixed host:if, and keeps the pcaps', async () => {
    const { child, ready } = startCapture(['client:eth0', 'node1:eth0', 'node2:eth0', 'web-2:eth0', '--filter', 'tcp', '--duration', '5', '--write', dir]);
    await ready;
    for (let i = 0; i < 3; i++) await sh('ip', ['netns', 'exec', `${LAB}-client`, 'curl', '-s', '10.240.0.4:32000']);
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const lines = String(r.stdout).split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(10);
    const points = new Set(lines.map((l) => l.split(/\s+/)[1]));
    expect([...points].sort()).toEqual(expect.arrayContaining(['client:eth0', 'node1:eth0']));
    expect(lines.some((l) => /^\S+ client:eth0 +IP 10\.241\.0\.4\.\d+ > 10\.240\.0\.4\.32000: Flags \[S\]/.test(l))).toBe(true);
    // Time order: the clock column never goes back.
    const times = lines.map((l) => l.split(' ')[0]!);
    expect(times).toEqual([...times].sort());
    for (const p of ['client-eth0', 'node1-eth0', 'node2-eth0', 'web-2-eth0']) expect(existsSync(join(dir, `${p}.pcap`))).toBe(true);
    expect(parsePcap(readFileSync(join(dir, 'client-eth0.pcap'))).filter((p) => p.flags === 'S')).toHaveLength(3);
    await noTcpdumpLeft();
  });

  it('stops after --count packets', async () => {
    const { child, ready } = startCapture(['node1:eth0', '--filter', 'tcp', '--count', '3']);
    await ready;
    await sh('ip', ['netns', 'exec', `${LAB}-client`, 'curl', '-s', '10.240.0.4:32000']);
    const r = await child;
    expect(r.exitCode).toBe(0);
    expect(String(r.stdout).split('\n').filter(Boolean)).toHaveLength(3);
    await noTcpdumpLeft();
  });

  it('leaves no tcpdump behind on Ctrl-C or SIGTERM', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const { child, ready } = startCapture(['node1:eth0', 'client']);
      await ready;
      child.kill(signal);
      await child;
      await noTcpdumpLeft();
    }
  });

  it('refuses a bad filter, host or interface (exit 2)', async () => {
    expect((await lab(['capture', LAB, 'node1:eth0', '--filter', 'bogus filter'])).exitCode).toBe(2);
    expect((await lab(['capture', LAB, 'nohost:eth0'])).exitCode).toBe(2);
    expect((await lab(['capture', LAB, 'node1:no/such'])).exitCode).toBe(2);
    await noTcpdumpLeft();
  });
});
