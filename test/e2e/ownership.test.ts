import { execa } from 'execa';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab, labProcesses, namespaces, processStartTime, requireRoot, ROOT, sh, startLab } from './helpers.js';

/**
 * Lab identity and ownership (issue 16, items 2, 3, 5, 6 and 7): the lab named on the command
 * line is the only lab a verb touches, whatever its topology file now says; nothing the lab did
 * not make is deleted or killed, whatever its state file now says; two labs whose namespace
 * names overlap never take each other's; `down` works on a full or read-only state root; a
 * scale stopped by a signal leaves a lab the next verb can work on.
 */

const root = requireRoot();
const STATE_ROOT = '/run/kube-packet-lab';
const LABS = ['ea', 'eb', 'own', 'pa', 'pa-b', 'sig-scale', 'edit'];
/** The nodeport scenario, to edit; its walkthrough is copied beside it (a topology names files in its own folder). */
const NODEPORT = readFileSync(join(ROOT, 'topologies', 'nodeport.yaml'), 'utf8');
const labNamespaces = async (l: string) => (await namespaces()).filter((n) => n.startsWith(`${l}-`));
const stateOf = (l: string, stateRoot = STATE_ROOT) => JSON.parse(readFileSync(`${stateRoot}/${l}/state.json`, 'utf8')) as Record<string, unknown> & { namespaces: string[] };
const writeStateOf = (l: string, state: object) => writeFileSync(`${STATE_ROOT}/${l}/state.json`, JSON.stringify(state, null, 2));
const nat = (ns: string) => sh('ip', ['netns', 'exec', ns, 'iptables-save', '-t', 'nat']);
const dnatTargets = async (ns: string) => [...(await nat(ns)).matchAll(/--to-destination (\S+)/g)].map((m) => m[1]!).sort();
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

describe.skipIf(!root)('ownership: one lab per verb, nothing foreign deleted or killed', () => {
  let tmp: string;
  beforeAll(async () => {
    for (const l of LABS) await lab(['down', l]);
    tmp = mkdtempSync(join(tmpdir(), 'lab-own-'));
    copyFileSync(join(ROOT, 'topologies', 'nodeport.walkthrough.yaml'), join(tmp, 'nodeport.walkthrough.yaml'));
  });
  afterAll(async () => {
    for (const l of LABS) await lab(['down', l]);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('a topology file edited to name another lab: kill, verify and scale on the first lab touch only it', { timeout: 300_000 }, async () => {
    const file = join(tmp, 'my.yaml');
    writeFileSync(file, NODEPORT.replace('lab: nodeport', 'lab: ea'));
    expect((await lab(['up', file])).exitCode).toBe(0);
    writeFileSync(file, NODEPORT.replace('lab: nodeport', 'lab: eb'));
    expect((await lab(['up', file])).exitCode).toBe(0);
    const ebRules = await dnatTargets('eb-node1');

    const k = await lab(['kill', 'ea', 'web-2']);
    expect(k.exitCode, k.stderr).toBe(0);
    expect(await dnatTargets('ea-node1')).toEqual(['10.244.0.3:8443']);
    expect(await dnatTargets('eb-node1')).toEqual(ebRules);
    expect((await lab(['revive', 'ea', 'web-2'])).exitCode).toBe(0);

    const v = await lab(['verify', 'ea'], { timeout: 180_000 });
    expect(v.stdout).toMatch(/verify ea\b/);
    expect(v.stdout).not.toMatch(/verify eb\b/);

    const s = await lab(['scale', 'ea', 'web=3']);
    expect(s.exitCode, s.stderr).toBe(0);
    expect(await namespaces()).toContain('ea-web-3');
    expect(await namespaces()).not.toContain('eb-web-3');
    expect(stateOf('ea').namespaces).toContain('ea-web-3');
    expect(stateOf('ea').namespaces.filter((n) => n.startsWith('eb-'))).toEqual([]);
    expect(stateOf('eb').namespaces).not.toContain('eb-web-3');

    for (const l of ['ea', 'eb']) expect((await lab(['down', l])).exitCode).toBe(0);
    expect([...(await labNamespaces('ea')), ...(await labNamespaces('eb'))]).toEqual([]);
  });

  it('a namespace someone made under a pod name scale wants: scale refuses it (exit 5) before creating anything, and leaves it', async () => {
    expect((await lab(['up', 'nodeport', '--name', 'own'])).exitCode).toBe(0);
    await sh('ip', ['netns', 'add', 'own-web-3']);
    try {
      const before = await labNamespaces('own');
      const r = await lab(['scale', 'own', 'web=3']);
      expect(r.exitCode, r.stderr).toBe(5);
      expect(r.stderr).toMatch(/namespace own-web-3 already exists and is not lab own's/);
      expect(await labNamespaces('own')).toEqual(before);
      expect(stateOf('own').namespaces).not.toContain('own-web-3');
      expect((await lab(['down', 'own'])).exitCode).toBe(0);
      expect(await namespaces()).toContain('own-web-3');
    } finally {
      await sh('ip', ['netns', 'del', 'own-web-3']);
    }
  });

  it('a namespace that carries the lab\'s own marker but that its state forgot: scale removes it and builds the pod', async () => {
    expect((await lab(['up', 'nodeport', '--name', 'own'])).exitCode).toBe(0);
    try {
      await sh('ip', ['netns', 'add', 'own-web-3']);
      await sh('ip', ['-n', 'own-web-3', 'link', 'set', 'lo', 'alias', 'kube-packet-lab:own']);
      const stale = statSync('/run/netns/own-web-3').ino;
      const r = await lab(['scale', 'own', 'web=3']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(statSync('/run/netns/own-web-3').ino).not.toBe(stale);
      expect(stateOf('own').namespaces).toContain('own-web-3');
      expect((await lab(['exec', 'own', 'web-3', '--', 'ip', '-o', 'link', 'show', 'eth0'])).exitCode).toBe(0);
    } finally {
      expect((await lab(['down', 'own'])).exitCode).toBe(0);
    }
    expect(await labNamespaces('own')).toEqual([]);
  });

  it('two ups racing for one namespace name (pa\'s client b-node1, pa-b\'s node1), 10 times: one wins, the other is refused and deletes nothing of it', { timeout: 600_000 }, async () => {
    const file = join(tmp, 'pa.yaml');
    writeFileSync(file, NODEPORT.replace('lab: nodeport', 'lab: pa').replace('name: client,', 'name: b-node1,').replace(/^walkthrough: .*$/m, ''));
    for (let round = 0; round < 10; round++) {
      const [a, b] = await Promise.all([lab(['up', file]), lab(['up', 'nodeport', '--name', 'pa-b'])]);
      const winner = a.exitCode === 0 ? 'pa' : 'pa-b';
      const loser = winner === 'pa' ? b : a;
      expect([a.exitCode, b.exitCode].sort(), `${a.stderr}\n${b.stderr}`).toEqual([0, 5]);
      expect(loser.stderr).toMatch(/pa-b-node1/);
      expect((await lab(['status', winner])).exitCode).toBe(0);
      expect(await namespaces()).toContain('pa-b-node1');
      expect((await sh('ip', ['-n', 'pa-b-node1', 'link', 'show', 'lo'])).includes(`kube-packet-lab:${winner}`)).toBe(true);
      expect((await lab(['down', winner])).exitCode).toBe(0);
      expect(await namespaces()).not.toContain('pa-b-node1');
    }
  });

  it('a state file edited to list another lab\'s namespace and a foreign one, and a pid of an unrelated process: down deletes and kills none of them', async () => {
    expect((await lab(['up', 'nodeport', '--name', 'pa'])).exitCode).toBe(0);
    expect((await lab(['up', 'nodeport', '--name', 'pa-b'])).exitCode).toBe(0);
    await sh('ip', ['netns', 'add', 'pa-foreign']);
    const sleeper = execa('sleep', ['300'], { reject: false });
    try {
      const pid = sleeper.pid!;
      const state = stateOf('pa') as { namespaces: string[]; processes: { pid: number; startTime: string }[] };
      state.namespaces.push('pa-b-node1', 'pa-foreign');
      state.processes[0] = { ...state.processes[0]!, pid, startTime: processStartTime(pid) };
      writeStateOf('pa', state);

      const d = await lab(['down', 'pa']);
      expect(d.exitCode, d.stderr).toBe(0);
      expect(d.stdout).toMatch(/left alone: namespace pa-b-node1/);
      expect(alive(pid)).toBe(true);
      expect(await namespaces()).toEqual(expect.arrayContaining(['pa-b-node1', 'pa-foreign']));
      expect(await labNamespaces('pa-b')).toHaveLength(6);
      expect((await lab(['verify', 'pa-b'], { timeout: 180_000 })).exitCode).toBe(0);
      expect((await lab(['down', 'pa-b'])).exitCode).toBe(0);
    } finally {
      sleeper.kill('SIGKILL');
      await sleeper;
      await sh('ip', ['netns', 'del', 'pa-foreign']);
    }
  });

  it('down on a full state root, then on a read-only one: the namespaces and processes go, the state folder is a warning', async () => {
    const stateRoot = join(tmp, 'state');
    mkdirSync(stateRoot);
    await sh('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'lab-own-state', stateRoot]);
    const env = { LAB_STATE_DIR: stateRoot };
    try {
      expect((await lab(['up', 'nodeport', '--name', 'edit'], { env })).exitCode).toBe(0);
      await execa('dd', ['if=/dev/zero', `of=${stateRoot}/fill`, 'bs=64k'], { reject: false });
      const full = await lab(['down', 'edit'], { env });
      expect(full.exitCode, full.stderr).toBe(0);
      expect(full.stderr).not.toMatch(/\n\s+at /);
      expect(await labNamespaces('edit')).toEqual([]);
      expect(await labProcesses('edit')).toEqual([]);
      rmSync(`${stateRoot}/fill`);

      expect((await lab(['up', 'nodeport', '--name', 'edit'], { env })).exitCode).toBe(0);
      // Read-only as a mount, not as a file system: the workload process holds its log open for writing.
      await sh('mount', ['--bind', stateRoot, stateRoot]);
      await sh('mount', ['-o', 'remount,bind,ro', stateRoot]);
      const ro = await lab(['down', 'edit'], { env });
      expect(ro.exitCode, ro.stderr).toBe(0);
      expect(ro.stderr).not.toMatch(/\n\s+at /);
      expect(ro.stdout).toMatch(/warning: could not remove .*state\/edit \(EROFS\)/);
      expect(await labNamespaces('edit')).toEqual([]);
      expect(await labProcesses('edit')).toEqual([]);
      await sh('umount', [stateRoot]);
      expect((await lab(['down', 'edit'], { env })).exitCode).toBe(0);
      expect(existsSync(`${stateRoot}/edit`)).toBe(false);
    } finally {
      await lab(['down', 'edit'], { env });
      for (let i = 0; i < 2; i++) await sh('umount', [stateRoot]); // the read-only bind, if a failure left it, then the tmpfs
    }
  });

  it('scale down stopped by SIGINT, SIGTERM or SIGHUP at any moment, 9 times: the next scale works and state, namespaces and rules agree', { timeout: 600_000 }, async () => {
    const l = 'sig-scale';
    expect((await lab(['up', 'nodeport', '--name', l])).exitCode).toBe(0);
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    for (let i = 0; i < 9; i++) {
      expect((await lab(['scale', l, 'web=3'])).exitCode).toBe(0);
      const s = startLab(['scale', l, 'web=1']);
      await sleep(150 + i * 40);
      s.kill(signals[i % 3]);
      await s;
      const next = await lab(['scale', l, 'web=2']);
      expect(next.exitCode, `round ${i}: ${next.stderr}`).toBe(0);
      const webs = (await labNamespaces(l)).filter((n) => n.startsWith(`${l}-web-`));
      expect(webs).toEqual([`${l}-web-1`, `${l}-web-2`]);
      expect(stateOf(l).namespaces.filter((n) => n.startsWith(`${l}-web-`)).sort()).toEqual(webs);
      expect(await dnatTargets(`${l}-node1`)).toEqual(['10.244.0.3:8443', '10.244.1.2:8443']);
    }
    expect((await lab(['down', l])).exitCode).toBe(0);
    expect(await labProcesses(l)).toEqual([]);
  });
});
