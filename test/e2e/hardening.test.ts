import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostSnapshot, lab, labProcesses, namespaces, requireRoot, ROOT, sh, startLab, tcpdumpsWriting } from './helpers.js';

/**
 * The lab under careless and hostile use (issue 7): concurrent verbs on one lab, signals at any
 * moment, SIGKILL, hand-edited state, markers that try to escape the state root, labs of a
 * thousand pods. Every race is run ten times.
 */

const root = requireRoot();
const STATE_ROOT = '/run/kube-packet-lab';
const LABS = ['hard', 'race-up', 'sig-up', 'big', 'foreign'];
const labNamespaces = async (l: string) => (await namespaces()).filter((n) => n.startsWith(`${l}-`));
const tcpdumpsIn = (dir: string) => tcpdumpsWriting(dir);

/** Start the CLI without waiting for it, so a test can signal it. */
const start = (args: string[], env: Record<string, string> = {}) => startLab(args, { env });

/** Each test stands on its own: bring the lab up if an earlier one did not leave it up. */
async function ensureUp(l: string): Promise<void> {
  if ((await lab(['status', l])).exitCode !== 0) expect((await lab(['up', 'nodeport', '--name', l])).exitCode).toBe(0);
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A state file that lists a lab's pods, and the DNAT targets in a node's rules: they must agree. */
async function endpointsAgree(l: string): Promise<{ state: string[]; rules: string[]; namespaces: string[] }> {
  const state = JSON.parse(readFileSync(`${STATE_ROOT}/${l}/state.json`, 'utf8')) as { namespaces: string[]; podChanges?: { readiness: Record<string, boolean> } };
  const ready = state.namespaces.filter((ns) => ns.startsWith(`${l}-web-`) && state.podChanges?.readiness[ns.slice(l.length + 1)] !== false);
  const rules = await sh('ip', ['netns', 'exec', `${l}-node1`, 'iptables-save', '-t', 'nat']);
  const dnat = [...rules.matchAll(/--to-destination (\S+)/g)].map((m) => m[1]!).sort();
  return { state: ready.sort(), rules: dnat, namespaces: (await labNamespaces(l)).filter((n) => n.startsWith(`${l}-web-`)).sort() };
}

describe.skipIf(!root)('hardening: locks, signals, down sweep, state and limits', () => {
  let before: Record<string, string>;
  let tmp: string;
  beforeAll(async () => {
    for (const l of LABS) await lab(['down', l]);
    before = await hostSnapshot();
    tmp = mkdtempSync(join(tmpdir(), 'lab-hard-'));
  });
  afterAll(async () => {
    for (const l of LABS) await lab(['down', l]);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('down never deletes outside the state root: a marker naming "../canary" is reported and left alone', async () => {
    const stateRoot = join(tmp, 'a', 'b', 'state');
    mkdirSync(join(tmp, 'a', 'b', 'canary'), { recursive: true });
    writeFileSync(join(tmp, 'a', 'b', 'canary', 'keep'), 'x');
    await sh('ip', ['netns', 'add', 'evil-x']);
    try {
      await sh('ip', ['-n', 'evil-x', 'link', 'set', 'lo', 'alias', 'kube-packet-lab:../canary']);
      const r = await lab(['down'], { env: { LAB_STATE_DIR: stateRoot } });
      expect(r.exitCode).toBe(0);
      expect(r.stderr).toMatch(/left alone: namespace evil-x/);
      expect(existsSync(join(tmp, 'a', 'b', 'canary', 'keep'))).toBe(true);
      expect(await namespaces()).toContain('evil-x');
    } finally {
      await sh('ip', ['netns', 'del', 'evil-x']);
    }
  });

  it('a damaged or hand-edited state file: reading verbs exit 5 naming it; down works from the markers and deletes nothing else', async () => {
    expect((await lab(['up', 'nodeport', '--name', 'hard'])).exitCode).toBe(0);
    const file = `${STATE_ROOT}/hard/state.json`;
    const victim = join(tmp, 'victim');
    writeFileSync(victim, 'keep me');
    const state = JSON.parse(readFileSync(file, 'utf8')) as { files: string[]; namespaces: string[] };
    writeFileSync(file, JSON.stringify({ ...state, files: [victim], namespaces: [...state.namespaces, 'other-ns'] }));
    for (const args of [['status', 'hard'], ['verify', 'hard'], ['scale', 'hard', 'web=3'], ['rules', 'hard', 'node1']]) {
      const r = await lab(args);
      expect(r.exitCode, args.join(' ')).toBe(5);
      expect(r.stderr).toContain(file);
      expect(r.stderr).toMatch(/lab down hard/);
    }
    writeFileSync(file, '{"lab": "hard", "namesp');
    expect((await lab(['status', 'hard'])).stderr).toMatch(/not JSON/);
    const d = await lab(['down', 'hard']);
    expect(d.exitCode).toBe(0);
    expect(d.stdout).toMatch(/damaged/);
    expect(await labNamespaces('hard')).toEqual([]);
    expect(readFileSync(victim, 'utf8')).toBe('keep me');
    expect(existsSync(`${STATE_ROOT}/hard`)).toBe(false);
  });

  it('two ups of one lab at once, 10 times: one builds it, the other says it is up (exit 5), never a broken lab', { timeout: 300_000 }, async () => {
    for (let i = 0; i < 10; i++) {
      const [a, b] = await Promise.all([lab(['up', 'nodeport', '--name', 'race-up']), lab(['up', 'nodeport', '--name', 'race-up'])]);
      expect([a.exitCode, b.exitCode].sort(), `${a.stderr}${b.stderr}`).toEqual([0, 5]);
      expect(`${a.stderr}${b.stderr}`).toMatch(/already up/);
      expect(await labNamespaces('race-up')).toHaveLength(6);
      expect((await lab(['down', 'race-up'])).exitCode).toBe(0);
      expect(await labNamespaces('race-up')).toEqual([]);
    }
  });

  it('scale web=4 and web=3 at once, 10 times: both land one after the other, state, namespaces and rules agree', { timeout: 300_000 }, async () => {
    await ensureUp('hard');
    for (let i = 0; i < 10; i++) {
      const [a, b] = await Promise.all([lab(['scale', 'hard', 'web=4']), lab(['scale', 'hard', 'web=3'])]);
      expect([a.exitCode, b.exitCode], `${a.stderr}${b.stderr}`).toEqual([0, 0]);
      const e = await endpointsAgree('hard');
      expect(e.namespaces).toEqual(e.state);
      expect(e.rules.length).toBe(e.state.length);
    }
    expect((await lab(['scale', 'hard', 'web=2'])).exitCode).toBe(0);
  });

  it('kill web-1 and web-2 at once, then revive both at once, 10 times: no update is lost', { timeout: 300_000 }, async () => {
    await ensureUp('hard');
    for (let i = 0; i < 10; i++) {
      const kills = await Promise.all([lab(['kill', 'hard', 'web-1']), lab(['kill', 'hard', 'web-2'])]);
      expect(kills.map((k) => k.exitCode), kills.map((k) => k.stderr).join('')).toEqual([0, 0]);
      expect((await endpointsAgree('hard')).rules).toEqual([]);
      if (i === 0) {
        // No endpoint answers: probe says so with exit 1.
        expect((await lab(['probe', 'hard', '-n', '2', '--timeout', '0.3'])).exitCode).toBe(1);
      }
      const revives = await Promise.all([lab(['revive', 'hard', 'web-1']), lab(['revive', 'hard', 'web-2'])]);
      expect(revives.map((k) => k.exitCode), revives.map((k) => k.stderr).join('')).toEqual([0, 0]);
      expect((await endpointsAgree('hard')).rules).toHaveLength(2);
    }
  });

  it('a second verb waits for the first; one that cannot wait exits 5 naming the holder', async () => {
    await ensureUp('hard');
    // A holder that stays long enough for two CLI starts on a busy machine: the real lock module, held 8 s.
    const holder = execa(process.execPath, ['--input-type=module', '-e', `
      const { withLabLock } = await import(${JSON.stringify(join(ROOT, 'dist', 'lab', 'state', 'lock.js'))});
      await withLabLock('hard', 'verify', async () => { console.log('held'); await new Promise((r) => setTimeout(r, 8000)); });
    `], { reject: false });
    await new Promise<void>((resolve) => holder.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve()));
    const waiting = lab(['scale', 'hard', 'web=3'], { env: { LAB_LOCK_WAIT: '60' } });
    const r = await lab(['scale', 'hard', 'web=3'], { env: { LAB_LOCK_WAIT: '0' } });
    expect(r.exitCode).toBe(5);
    expect(r.stderr).toMatch(new RegExp(`lab hard is busy: verify by pid ${holder.pid} since \\d{4}-`));
    // Reading verbs take no lock.
    expect((await lab(['status', 'hard'])).exitCode).toBe(0);
    expect((await holder).exitCode).toBe(0);
    const w = await waiting;
    expect(w.exitCode, w.stderr).toBe(0);
    expect(w.stdout).toMatch(/2 -> 3 pods/);
    expect((await lab(['scale', 'hard', 'web=2'])).exitCode).toBe(0);
  });

  it('verify stopped by SIGTERM, SIGINT or SIGHUP at its first pcap, 10 times: no tcpdump left, run marked incomplete, exit 143/130/129', async () => {
    const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
    const codes = { SIGTERM: 143, SIGINT: 130, SIGHUP: 129 };
    await ensureUp('hard');
    for (let i = 0; i < 10; i++) {
      const signal = signals[i % 3]!;
      const out = join(tmp, `sig-${i}`);
      const v = start(['verify', 'hard', '--out', out]);
      await waitFor('a pcap', () => existsSync(out) && readdirPcaps(out) > 0);
      v.kill(signal);
      const r = await v;
      expect(r.exitCode, String(r.stderr)).toBe(codes[signal]);
      expect(await tcpdumpsIn(out)).toEqual([]);
      expect(readFileSync(join(out, 'INCOMPLETE'), 'utf8')).toMatch(new RegExp(`stopped by ${signal}`));
    }
  });

  it('verify SIGKILLed among its captures: lab down stops the orphaned tcpdumps by namespace, then removes the lab', async () => {
    for (let i = 0; i < 3; i++) {
      await ensureUp('hard');
      const out = join(tmp, `kill-${i}`);
      const v = start(['verify', 'hard', '--out', out]);
      await waitFor('all five pcaps', () => existsSync(out) && readdirPcaps(out) >= 5);
      v.kill('SIGKILL');
      await v;
      expect(readFileSync(join(out, 'INCOMPLETE'), 'utf8')).toMatch(/has not finished/);
      const d = await lab(['down', 'hard']);
      expect(d.exitCode).toBe(0);
      expect(await tcpdumpsIn(out)).toEqual([]);
      expect(await labNamespaces('hard')).toEqual([]);
      expect(await labProcesses('hard')).toEqual([]);
    }
  });

  // This test failed about once in 4 CI runs: a signal that came as a finished `up` was exiting
  // killed it outright (Node restores the default action while it tears down), which the test
  // took for a failed rollback. Measured: a signal sent just after up prints its last line ends
  // it by the signal 27 times in 30.
  it('up stopped by SIGINT or SIGTERM at any moment, 10 times: it rolls back, nothing is left', async () => {
    for (let i = 0; i < 10; i++) {
      const signal = i % 2 ? 'SIGTERM' : 'SIGINT';
      const u = start(['up', 'nodeport', '--name', 'sig-up']);
      await waitFor('the state file', () => existsSync(`${STATE_ROOT}/sig-up/state.json`));
      await sleep(i * 60);
      u.kill(signal);
      const r = await u;
      if (String(r.stdout).includes('next: lab verify')) {
        // It finished before the signal came: exit 0, or, when the signal found it exiting (its
        // handlers already gone), killed by it. Either way an ordinary lab, removed as usual.
        expect((await lab(['status', 'sig-up'])).exitCode).toBe(0);
        expect((await lab(['down', 'sig-up'])).exitCode).toBe(0);
      } else {
        expect(r.exitCode, `${r.signal ?? ''} ${String(r.stderr)}`).toBe(signal === 'SIGINT' ? 130 : 143);
      }
      expect(await labNamespaces('sig-up')).toEqual([]);
      expect(existsSync(`${STATE_ROOT}/sig-up`)).toBe(false);
      expect(await labProcesses('sig-up')).toEqual([]);
    }
  });

  it('a namespace named like one of the lab\'s but not made by it: up names it (exit 5), down leaves it', async () => {
    await sh('ip', ['netns', 'add', 'foreign-node1']);
    try {
      const r = await lab(['up', 'nodeport', '--name', 'foreign']);
      expect(r.exitCode).toBe(5);
      expect(r.stderr).toMatch(/namespace foreign-node1 already exists and is not lab foreign's/);
      expect(await labNamespaces('foreign')).toEqual(['foreign-node1']);
      expect((await lab(['down', 'foreign'])).exitCode).toBe(0);
      expect(await namespaces()).toContain('foreign-node1');
    } finally {
      await sh('ip', ['netns', 'del', 'foreign-node1']);
    }
  });

  it('a thousand pods: down after a SIGKILLed up, and rollback after SIGINT, remove every namespace in batches', async () => {
    const file = join(tmp, 'big.yaml');
    writeFileSync(file, bigTopology(5, 200));
    const killed = await lab(['up', file], { env: { LAB_CRASH_AFTER: 'namespaces' }, timeout: 120_000 });
    expect(killed.exitCode).not.toBe(0);
    expect(await labNamespaces('big')).toHaveLength(1006);
    const d = await lab(['down', 'big'], { timeout: 120_000 });
    expect(d.exitCode, d.stderr).toBe(0);
    expect(await labNamespaces('big')).toEqual([]);

    const u = start(['up', file]);
    await waitFor('the links stage', async () => (await labNamespaces('big')).length === 1006, 60_000);
    u.kill('SIGINT');
    const r = await u;
    expect(r.exitCode, String(r.stderr)).toBe(130);
    expect(await labNamespaces('big')).toEqual([]);
    expect(existsSync(`${STATE_ROOT}/big`)).toBe(false);
  });

  it('every verb leaves the host network namespace as it found it, and no lab namespace has a route out', { timeout: 300_000 }, async () => {
    await lab(['down', 'hard']);
    const verbs: string[][] = [
      ['up', 'nodeport', '--name', 'hard'],
      ['status', 'hard'],
      ['rules', 'hard', 'node1'],
      ['conntrack', 'hard', 'node1'],
      ['exec', 'hard', 'node1', '--', 'ip', 'route'],
      ['probe', 'hard', '-n', '3'],
      ['verify', 'hard', '--out', join(tmp, 'every-verb')],
      ['trace', 'hard'],
      ['scale', 'hard', 'web=3'],
      ['kill', 'hard', 'web-3'],
      ['revive', 'hard', 'web-3'],
      ['workshop', 'hard', '--check'],
      ['down', 'hard'],
    ];
    const host = await hostSnapshot();
    for (const argv of verbs) {
      const r = await lab(argv);
      // This test is about the host: a verb that checks (verify, probe, trace, workshop --check) may
      // report a failed check (1) on a loaded machine; every other outcome is a failure here.
      const checks = ['verify', 'probe', 'trace', 'workshop'].includes(argv[0]!);
      expect(checks ? [0, 1] : [0], `${argv.join(' ')}: ${r.stderr}`).toContain(r.exitCode);
      expect(await hostSnapshot(), argv.join(' ')).toEqual(host);
      if (argv[0] === 'up') {
        for (const ns of await labNamespaces('hard')) {
          const routes = await sh('ip', ['-n', ns, 'route', 'show', 'table', 'all']);
          expect(routes, ns).not.toMatch(/^default /m);
        }
      }
    }
  });

  it('left the host network namespace exactly as it found it', async () => {
    expect(await hostSnapshot()).toEqual(before);
  });
});

function readdirPcaps(dir: string): number {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.pcap')).length;
  } catch {
    return 0;
  }
}

/** A lab of `nodes` nodes with `perNode` pods each and no services (so no workloads). */
function bigTopology(nodes: number, perNode: number): string {
  const lines = [
    'lab: big',
    'cluster: { podCIDR: 10.244.0.0/16, serviceCIDR: 172.31.0.0/16 }',
    'networks: [{ name: nodes, subnet: 10.240.0.0/24 }]',
    'routers: [{ name: router, interfaces: [{ network: nodes, address: 10.240.0.1 }] }]',
    'nodes:',
  ];
  for (let n = 1; n <= nodes; n++) lines.push(`  - { name: node${n}, network: nodes, address: 10.240.0.${n + 3}, podCIDR: 10.244.${n}.0/24 }`);
  lines.push('pods:');
  let k = 0;
  for (let n = 1; n <= nodes; n++) for (let i = 0; i < perNode; i++) lines.push(`  - { name: p-${++k}, node: node${n}, address: 10.244.${n}.${i + 2} }`);
  return `${lines.join('\n')}\n`;
}
