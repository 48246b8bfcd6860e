import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Running from '../../lab/api/running.js';
import type * as TopologyCache from '../../lab/api/topology-cache.js';
import type * as Store from '../../lab/state/store.js';
import { TOPOLOGIES_DIR } from '../../lab/topology/paths.js';

/**
 * What a lab keeps between commands, in its state folder: kube-proxy's needFullSync (an endpoint
 * change whose sync did not finish makes the next sync full) and the validated topology (used
 * while the file it came from is unchanged, and after an edit until `lab apply` takes it).
 */

// The store reads LAB_STATE_DIR when it is loaded: point it at a folder of this test's own first.
const root = mkdtempSync(join(tmpdir(), 'lab-memory-'));
const before = process.env.LAB_STATE_DIR;
let store: typeof Store;
let running: typeof Running;
let cache: typeof TopologyCache;
beforeAll(async () => {
  process.env.LAB_STATE_DIR = root;
  store = await import('../../lab/state/store.js');
  running = await import('../../lab/api/running.js');
  cache = await import('../../lab/api/topology-cache.js');
});
afterAll(() => {
  if (before === undefined) delete process.env.LAB_STATE_DIR;
  else process.env.LAB_STATE_DIR = before;
  rmSync(root, { recursive: true, force: true });
});

/** A lab as `up --name <lab>` records it (the name is an override of the file's `lab:`). */
const upLab = (lab: string, topologyPath: string) => {
  const s = store.LabStore.create({ lab, topologyPath, overrides: { lab }, createdAt: 'now', phase: 'creating', namespaces: [], processes: [], files: [] });
  s.markUp(cache.topologyKey(topologyPath, { lab }));
  return s;
};

describe('needFullSync: an endpoint change recorded but not synced', () => {
  it('is set with the change, cleared by the sync, and seen by the next command that opens the state', () => {
    const s = upLab('m1', '/x.yaml');
    expect(new store.LabStore(store.readState('m1')!).needFullSync).toBe(false);
    s.setPodChanges({ added: [], removed: [], readiness: { 'web-2': false }, terminating: {}, templates: {} });
    // The command died here: the next one must sync in full.
    expect(new store.LabStore(store.readState('m1')!).needFullSync).toBe(true);
    // This command's own change does not make its own sync full: the flag was read at open.
    const next = new store.LabStore(store.readState('m1')!);
    next.recordProxySync(false);
    expect(new store.LabStore(store.readState('m1')!).needFullSync).toBe(false);
  });

  it('keeps the time of the last stale-chain sweep unless this sync swept', () => {
    const s = upLab('m2', '/x.yaml');
    const swept = store.readState('m2')!.proxySync!.lastSweep;
    expect(swept).toBeDefined();
    s.recordProxySync(false);
    expect(store.readState('m2')!.proxySync!.lastSweep).toBe(swept);
  });
});

describe('the validated topology kept in the lab folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lab-memory-topo-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is used while the file is unchanged, and the file is read again once it changes', () => {
    const file = join(dir, 'np.yaml');
    copyFileSync(join(TOPOLOGIES_DIR, 'nodeport.yaml'), file);
    upLab('m3', file);
    expect(running.runningLab('m3').topology.description).not.toBe('from the cache');
    // The rules were synced from this very reading of the file: a change may sync partially.
    expect(running.runningLab('m3').store().needFullSync).toBe(false);

    // The kept copy is what later commands use (marked here so the test can tell).
    const cache = join(root, 'm3', 'topology.json');
    const kept = JSON.parse(readFileSync(cache, 'utf8')) as { topology: { description?: string } };
    kept.topology.description = 'from the cache';
    writeFileSync(cache, JSON.stringify(kept));
    expect(running.runningLab('m3').topology.description).toBe('from the cache');

    // An edited file (other size and time) is not what the lab runs: as a cluster does not change
    // when its YAML is edited, the lab keeps its copy until `lab apply` takes the edit (which
    // compares the copy with the edited file: editing in place and applying must see a change).
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^description: .*$/m, 'description: edited'));
    expect(running.runningLab('m3').topology.description).toBe('from the cache');
    expect(running.runningLab('m3').path).toBe(file);
    // The rules came from that same copy: nothing forces a full sync.
    expect(running.runningLab('m3').store().needFullSync).toBe(false);
  });

  it('a copy kept from other overrides is not used for an edited file: the file is read', () => {
    const file = join(dir, 'np3.yaml');
    copyFileSync(join(TOPOLOGIES_DIR, 'nodeport.yaml'), file);
    upLab('m5', file);
    running.runningLab('m5'); // the first read keeps the copy
    const cache = join(root, 'm5', 'topology.json');
    const kept = JSON.parse(readFileSync(cache, 'utf8')) as { key: string; topology: { description?: string } };
    const key = JSON.parse(kept.key) as unknown[];
    key[6] = { lab: 'm5', 'kubeProxy.mode': 'nftables' };
    writeFileSync(cache, JSON.stringify({ ...kept, key: JSON.stringify(key), topology: { ...kept.topology, description: 'from the cache' } }));
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^description: .*$/m, 'description: edited'));
    expect(running.runningLab('m5').topology.description).toBe('edited');
  });

  it('a damaged copy is ignored: the file is read', () => {
    const file = join(dir, 'np2.yaml');
    copyFileSync(join(TOPOLOGIES_DIR, 'nodeport.yaml'), file);
    upLab('m4', file);
    writeFileSync(join(root, 'm4', 'topology.json'), '{ not json');
    expect(running.runningLab('m4').topology.pods.map((p) => p.name)).toEqual(['web-1', 'web-2']);
  });
});
