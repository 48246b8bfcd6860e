import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Store from '../../lab/state/store.js';

// The store reads LAB_STATE_DIR when it is loaded: point it at a folder of this test's own first.
const root = mkdtempSync(join(tmpdir(), 'lab-state-'));
const before = process.env.LAB_STATE_DIR;
let store: typeof Store;
beforeAll(async () => {
  process.env.LAB_STATE_DIR = root;
  store = await import('../../lab/state/store.js');
});
afterAll(() => {
  if (before === undefined) delete process.env.LAB_STATE_DIR;
  else process.env.LAB_STATE_DIR = before;
  rmSync(root, { recursive: true, force: true });
});

const onDisk = (lab: string) => JSON.parse(readFileSync(join(root, lab, 'state.json'), 'utf8')) as Store.LabState;

describe('LabStore: every change is written at once', () => {
  it('records intent, resources, the workload process, pods served, stopped and forgotten', () => {
    const s = store.LabStore.create({ lab: 't', topologyPath: '/x.yaml', overrides: {}, createdAt: 'now', phase: 'creating', namespaces: ['t-node1'], processes: [], files: [] });
    expect(onDisk('t').namespaces).toEqual(['t-node1']);

    s.addResources(['t-node1', 't-web-1'], ['/etc/netns/t-web-1']);
    expect(onDisk('t')).toMatchObject({ namespaces: ['t-node1', 't-web-1'], files: ['/etc/netns/t-web-1'] });

    s.setWorkloadHost({ ns: 't-node1', pid: 42, startTime: '7' });
    s.recordWorkloads([{ pod: 'web-1', ns: 't-web-1', pid: 42, startTime: '7', ports: [8443] }]);
    expect(onDisk('t').workloadHost).toEqual({ ns: 't-node1', pid: 42, startTime: '7' });
    expect(store.recordedProcesses(onDisk('t')).map((p) => p.pid)).toEqual([42, 42]);

    s.markStopped('web-1');
    expect(onDisk('t').processes[0]!.stopped).toBe(true);
    // Served again: the new record replaces the stopped one.
    s.recordWorkloads([{ pod: 'web-1', ns: 't-web-1', pid: 42, startTime: '7', ports: [8443] }]);
    expect(onDisk('t').processes).toEqual([{ pod: 'web-1', ns: 't-web-1', pid: 42, startTime: '7', ports: [8443] }]);

    s.forgetPods(['web-1'], ['t-web-1'], ['/etc/netns/t-web-1']);
    expect(onDisk('t')).toMatchObject({ namespaces: ['t-node1'], processes: [], files: [] });

    s.markUp();
    expect(store.readState('t')?.phase).toBe('up');
  });
});
