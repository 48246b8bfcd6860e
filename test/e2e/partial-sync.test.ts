import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EndpointChangeResult } from '../../lab/api/pods.js';
import { parseSave } from '../../lab/plan/kube-proxy/rules.js';
import { lab, requireRoot, sh } from './helpers.js';

/**
 * kube-proxy's partial syncs against the real kernel, in both proxy modes: after `lab kill` and
 * `lab revive` (each a partial sync: only the changed Service's chains are written), each node's
 * tables are what a fresh `lab up` of the same endpoints builds, and the walkthrough passes.
 */

const root = requireRoot();

/** iptables: nat and filter, chain -> its rules as iptables-save prints them (counters aside). */
async function iptablesView(ns: string): Promise<Record<string, string[]>> {
  const saved = parseSave(await sh('ip', ['netns', 'exec', ns, 'iptables-save']));
  const out: Record<string, string[]> = {};
  for (const [table, chains] of saved.chains) if (table === 'nat' || table === 'filter') for (const c of chains) out[`${table} ${c}`] = [];
  for (const r of saved.rules) if (r.table === 'nat' || r.table === 'filter') out[`${r.table} ${r.chain}`]!.push(r.text);
  return out;
}

interface NftObject {
  chain?: { name: string };
  rule?: { chain: string; expr: unknown; comment?: string };
  set?: { name: string; elem?: unknown[] };
  map?: { name: string; elem?: unknown[] };
}

/** nftables: table ip kube-proxy as chain -> rules, container -> elements (handles and order of creation aside). */
async function nftView(ns: string): Promise<Record<string, string[]>> {
  const { nftables } = JSON.parse(await sh('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'ip', 'kube-proxy'])) as { nftables: NftObject[] };
  const out: Record<string, string[]> = {};
  for (const o of nftables) {
    if (o.chain) out[`chain ${o.chain.name}`] ??= [];
    if (o.rule) (out[`chain ${o.rule.chain}`] ??= []).push(JSON.stringify([o.rule.expr, o.rule.comment]));
    const c = o.set ?? o.map;
    if (c) out[`${o.set ? 'set' : 'map'} ${c.name}`] = (c.elem ?? []).map((e) => JSON.stringify(e)).sort();
  }
  return out;
}

const sortedEntries = (v: Record<string, string[]>) => Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1));

for (const mode of ['iptables', 'nftables'] as const) {
  describe.skipIf(!root)(`partial syncs in ${mode} mode`, () => {
    const LAB = `ps-${mode.slice(0, 3)}`;
    const FRESH = `ps-${mode.slice(0, 3)}-fresh`;
    const set = ['--set', `kubeProxy.mode=${mode}`];
    const view = mode === 'iptables' ? iptablesView : nftView;

    async function expectSameAsFresh(extra: string[]): Promise<void> {
      const up = await lab(['up', 'nodeport', '--name', FRESH, ...set, ...extra]);
      expect(up.exitCode, up.stderr).toBe(0);
      try {
        for (const node of ['node1', 'node2']) {
          expect(sortedEntries(await view(`${LAB}-${node}`)), `${node} after partial syncs vs a fresh up`).toEqual(sortedEntries(await view(`${FRESH}-${node}`)));
        }
      } finally {
        await lab(['down', FRESH]);
      }
    }

    async function change(args: string[]): Promise<EndpointChangeResult> {
      const r = await lab([...args, '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as EndpointChangeResult;
    }

    beforeAll(async () => {
      for (const name of [LAB, FRESH]) await lab(['down', name]);
      const up = await lab(['up', 'nodeport', '--name', LAB, ...set]);
      expect(up.exitCode, up.stderr).toBe(0);
    });
    afterAll(async () => {
      for (const name of [LAB, FRESH]) await lab(['down', name]);
    });

    it('kill web-2 (--keep-running): a partial sync, and the nodes hold what a fresh up with web-2 unready holds', async () => {
      const r = await change(['kill', LAB, 'web-2', '--keep-running']);
      expect(r.rules.map((n) => [n.node, n.sync, n.services])).toEqual([
        ['node1', 'partial', 1],
        ['node2', 'partial', 1],
      ]);
      for (const n of r.rules) expect(n.removed).toHaveLength(1); // the gone endpoint's chain, swept
      await expectSameAsFresh(['--set', 'pods.web-2.ready=false']);
    });

    it('revive web-2: a partial sync back to the fresh lab\'s rules, and the walkthrough passes', async () => {
      const r = await change(['revive', LAB, 'web-2']);
      expect(r.rules.every((n) => n.sync === 'partial' && n.added.length === 1)).toBe(true);
      await expectSameAsFresh([]);
      const v = await lab(['verify', LAB]);
      expect(v.exitCode, v.stdout.slice(-2000)).toBe(0);
    });
  });
}
