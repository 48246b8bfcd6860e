import { execa } from 'execa';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The state root is read when the store loads: point it at a private folder first.
const stateRoot = mkdtempSync(join(tmpdir(), 'lab-unit-state-'));
process.env.LAB_STATE_DIR = stateRoot;
process.env.LAB_LOCK_WAIT = '0';
const { inspectState, labDir, labFolders, LabStore, readState } = await import('../../lab/state/store.js');
const { withLabLock } = await import('../../lab/state/lock.js');
const { insideRoot } = await import('../../lab/util/paths.js');
const { mapLimit } = await import('../../lab/util/pool.js');
const { makeOutputDir } = await import('../../lab/util/output-dir.js');

const goodState = (lab: string) => ({
  lab,
  topologyPath: '/x/nodeport.yaml',
  overrides: {},
  createdAt: '2026-11-29T00:00:00.000Z',
  phase: 'up' as const,
  namespaces: [`${lab}-node1`, `${lab}-web-1`],
  processes: [{ pod: 'web-1', ns: `${lab}-web-1`, pid: 4242, startTime: '123', ports: [8443] }],
  files: [`/etc/netns/${lab}-web-1`],
});

describe('the state file is validated when read', () => {
  it('reads back what it wrote', () => {
    LabStore.create(goodState('good'));
    expect(readState('good')?.namespaces).toEqual(['good-node1', 'good-web-1']);
  });

  const damaged: [string, unknown, RegExp][] = [
    ['not JSON', '{"lab": "x", "nam', /not JSON/],
    ['a namespace of another lab', { ...goodState('d2'), namespaces: ['other-node1'] }, /namespaces\.0: other-node1 is not named like a namespace of lab d2/],
    ['a file outside /etc/netns', { ...goodState('d3'), files: ['/etc/passwd'] }, /files\.0: \/etc\/passwd is not the \/etc\/netns folder/],
    ['a pid that is a word', { ...goodState('d4'), processes: [{ pod: 'w', ns: 'd4-w', pid: 'one', startTime: '1', ports: [] }] }, /processes\.0\.pid/],
    ['an unknown phase', { ...goodState('d5'), phase: 'half' }, /phase/],
    ['another lab\'s name', goodState('elsewhere'), /names lab "elsewhere"/],
    ['an unknown key', { ...goodState('d7'), extra: 1 }, /extra: unknown key/],
    ['a missing key', { ...goodState('d8'), phase: undefined }, /phase: missing/],
    ['a port that is text, deep inside', { ...goodState('d9'), processes: [{ pod: 'w', ns: 'd9-w', pid: 42, startTime: '1', ports: ['443'] }] }, /processes\.0\.ports\.0: expected a whole number/],
    ['an added pod of another shape', { ...goodState('d10'), podChanges: { added: [{ name: 'web-3' }], removed: [], readiness: {}, templates: {} } }, /podChanges\.added\.0\.node: missing/],
    ['a namespace name with a slash', { ...goodState('d11'), namespaces: ['d11-../x'] }, /namespaces\.0: "d11-\.\.\/x" is not a namespace name/],
  ];
  it.each(damaged)('%s: exit 5 naming the file and "lab down"', (_name, content, why) => {
    const lab = `dmg-${damaged.findIndex((d) => d[1] === content)}`;
    mkdirSync(labDir(lab), { recursive: true });
    writeFileSync(join(labDir(lab), 'state.json'), typeof content === 'string' ? content : JSON.stringify(content));
    expect(inspectState(lab).problem).toMatch(why);
    expect(() => readState(lab)).toThrow(expect.objectContaining({ exitCode: 5, message: expect.stringContaining(`${labDir(lab)}/state.json`) }));
    expect(() => readState(lab)).toThrow(new RegExp(`lab down ${lab}`));
  });

  it('a state written before podChanges had terminating: read with its defaults', () => {
    const state = { ...goodState('old'), podChanges: { added: [{ name: 'web-3', node: 'node1', address: '10.244.1.9', labels: { app: 'web' }, ready: true, workload: 'http' }], removed: [], readiness: {}, templates: {} } };
    mkdirSync(labDir('old'), { recursive: true });
    writeFileSync(join(labDir('old'), 'state.json'), JSON.stringify(state));
    const read = readState('old')!;
    expect(read.podChanges?.terminating).toEqual({});
    expect(read.podChanges?.added[0]?.terminating).toBe(false);
  });

  it('no state is not damage', () => {
    expect(inspectState('never-made')).toEqual({});
  });

  it('a lab name that is no lab name never becomes a path', () => {
    expect(() => labDir('../canary')).toThrow(/not a lab name/);
    expect(() => labDir('')).toThrow(/not a lab name/);
    mkdirSync(join(stateRoot, 'Not_A_Lab'), { recursive: true });
    expect(labFolders()).not.toContain('Not_A_Lab');
  });
});

describe('paths stay inside their root', () => {
  const root = mkdtempSync(join(tmpdir(), 'lab-unit-root-'));
  it.each([
    ['a child', join(root, 'a'), true],
    ['a grandchild', join(root, 'a', 'b'), true],
    ['the root itself', root, false],
    ['a sibling through ..', join(root, '..', 'canary'), false],
    ['a sibling with the root as prefix', `${root}-canary`, false],
  ])('%s', (_name, path, inside) => {
    expect(insideRoot(root, path)).toBe(inside);
  });
  it('a symlink that leads out', () => {
    symlinkSync('/etc', join(root, 'out'));
    expect(insideRoot(root, join(root, 'out', 'passwd'))).toBe(false);
  });
});

describe('the lab lock', () => {
  it('is re-entrant within a process (up\'s rollback runs down)', async () => {
    const order: string[] = [];
    await withLabLock('lk', 'up', async () => {
      order.push('up');
      await withLabLock('lk', 'down', async () => {
        order.push('down');
      });
    });
    expect(order).toEqual(['up', 'down']);
  });

  it('another process holding it makes a verb that cannot wait exit 5, naming verb, pid and time', async () => {
    const holder = execa(process.execPath, ['--input-type=module', '-e', `
      const { withLabLock } = await import(${JSON.stringify(new URL('../../dist/lab/state/lock.js', import.meta.url).pathname)});
      await withLabLock('lk2', 'scale', async () => { console.log('held'); await new Promise((r) => setTimeout(r, 4000)); });
    `], { env: { LAB_STATE_DIR: stateRoot }, reject: false });
    await new Promise<void>((resolve) => holder.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve()));
    await expect(withLabLock('lk2', 'kill', async () => 'ran')).rejects.toThrow(new RegExp(`lab lk2 is busy: scale by pid ${holder.pid} since \\d{4}-`));
    holder.kill('SIGKILL');
    await holder;
    // The kernel dropped the killed holder's lock: no stale lock to clear.
    await expect(withLabLock('lk2', 'kill', async () => 'ran')).resolves.toBe('ran');
  });
});

describe('bounded concurrency', () => {
  it('never runs more than the limit, and keeps the order of results', async () => {
    let running = 0;
    let most = 0;
    const out = await mapLimit(Array.from({ length: 100 }, (_, i) => i), 7, async (i) => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 1));
      running--;
      return i * 2;
    });
    expect(most).toBe(7);
    expect(out).toEqual(Array.from({ length: 100 }, (_, i) => i * 2));
  });
});

describe('verify --out', () => {
  const base = mkdtempSync(join(tmpdir(), 'lab-unit-out-'));
  writeFileSync(join(base, 'file'), 'x');
  it.each([
    ['/proc/nonexistent/x', /under \/proc/],
    ['/sys/kernel/x', /under \/sys/],
    ['/dev/null', /under \/dev/],
    [join(base, 'file'), /is a file, not a folder/],
    [join(base, 'file', 'below'), /is a file, not a folder/],
  ])('refuses %s with exit 2', (path, why) => {
    expect(() => makeOutputDir(path, '--out')).toThrow(expect.objectContaining({ exitCode: 2 }));
    expect(() => makeOutputDir(path, '--out')).toThrow(why);
  });
  it('makes a new folder', () => {
    expect(makeOutputDir(join(base, 'new', 'run'), '--out')).toBe(join(base, 'new', 'run'));
  });
});
