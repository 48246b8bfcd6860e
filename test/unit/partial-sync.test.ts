import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { endpointChain, serviceChain } from '../../lab/plan/kube-proxy/hash.js';
import { initialRestore, kubeProxyRules, LARGE_CLUSTER_ENDPOINTS, SERVICE_CHAIN } from '../../lab/plan/kube-proxy/iptables.js';
import { isServiceChain, nftablesRules, planNftSync } from '../../lab/plan/kube-proxy/nftables.js';
import { parseSave } from '../../lab/plan/kube-proxy/rules.js';
import { isLargeCluster, sweepsStaleChains, SYNC_PERIOD_MS, syncScope, type SyncScope } from '../../lab/plan/kube-proxy/scope.js';
import { planChangeSync, type ProxyExisting } from '../../lab/plan/kube-proxy/sync.js';
import { applyPodChanges, emptyChanges, planScale, recordReadiness, withScale } from '../../lab/plan/scale.js';
import { loadTopology } from '../../lab/topology/load.js';
import type { Topology } from '../../lab/topology/schema.js';
import { scaleTopology } from '../../scripts/scale-topology.js';

/**
 * kube-proxy's partial syncs (MinimizeIPTablesRestore, and the nftables proxier's
 * skipServiceUpdate): after an endpoint change only the changed services' chains are written,
 * the top-level chains always in full. Checked by applying the payloads to a model of the
 * tables: a partial sync on top of the old rules must leave exactly what a full sync leaves.
 */

const load = (name: string, set: Record<string, string> = {}) => structuredClone(loadTopology(name, set).topology);
const NFT = { 'kubeProxy.mode': 'nftables' };

/** iptables-restore --noflush on a model: per table, chain -> rule lines. */
type Tables = Map<string, Map<string, string[]>>;
function restore(tables: Tables, payload: string): Tables {
  let t: Map<string, string[]> | undefined;
  for (const line of payload.split('\n')) {
    if (line.startsWith('*')) {
      const name = line.slice(1);
      if (!tables.has(name)) tables.set(name, new Map());
      t = tables.get(name);
    } else if (line.startsWith(':')) t!.set(line.slice(1).split(' ')[0]!, []); // declaring flushes (or creates)
    else if (line.startsWith('-A ')) {
      const chain = line.split(' ')[1]!;
      expect(t!.has(chain) || /^[A-Z]+$/.test(chain), `-A into undeclared chain ${chain}`).toBe(true);
      t!.set(chain, [...(t!.get(chain) ?? []), line]);
    } else if (line.startsWith('-X ')) t!.delete(line.slice(3));
  }
  return tables;
}
const iptablesAfterUp = (t: Topology, node: string) => restore(new Map(), initialRestore(kubeProxyRules(t, node)));
const natChains = (tables: Tables): ProxyExisting => ({ natChains: [...(tables.get('nat')?.keys() ?? [])], nft: { chains: [], sets: [] } });

/** nft -f on a model of table ip kube-proxy: chains with rules, containers with elements. */
interface NftModel {
  chains: Map<string, string[]>;
  containers: Map<string, Map<string, string>>;
}
function nftApply(m: NftModel, payload: string): NftModel {
  const name = (line: string, word: string) => line.split(' ')[line.split(' ').indexOf(word) + 3]!;
  for (const line of payload.split('\n').filter(Boolean)) {
    if (line.startsWith('add chain ')) {
      const c = name(line, 'chain');
      if (!m.chains.has(c)) m.chains.set(c, []);
    } else if (line.startsWith('flush chain ')) m.chains.set(name(line, 'chain'), []);
    else if (line.startsWith('delete chain ')) m.chains.delete(name(line, 'chain'));
    else if (line.startsWith('add rule ')) {
      const c = name(line, 'rule');
      expect(m.chains.has(c), `rule into missing chain ${c}`).toBe(true);
      m.chains.get(c)!.push(line);
    } else if (/^add (set|map) /.test(line)) {
      const c = line.split(' ')[4]!;
      if (!m.containers.has(c)) m.containers.set(c, new Map());
    } else if (/^flush (set|map) /.test(line)) m.containers.set(line.split(' ')[4]!, new Map());
    else if (line.startsWith('delete set ')) m.containers.delete(line.split(' ')[4]!);
    else if (/^(add|delete) element /.test(line)) {
      const c = line.split(' ')[4]!;
      const body = line.slice(line.indexOf('{ ') + 2, line.lastIndexOf(' }'));
      const key = body.split(/ comment | : /)[0]!;
      const elements = m.containers.get(c);
      expect(elements, `element of missing ${c}`).toBeDefined();
      if (line.startsWith('add')) {
        expect(elements!.has(key), `element ${key} of ${c} added twice`).toBe(false);
        elements!.set(key, body);
      } else {
        expect(elements!.has(key), `deleting missing element ${key} of ${c}`).toBe(true);
        elements!.delete(key);
      }
    }
  }
  return m;
}
const nftAfterUp = (t: Topology, node: string) => nftApply({ chains: new Map(), containers: new Map() }, planNftSync({ chains: [], sets: [] }, nftablesRules(t, node)).payload);
const nftExisting = (m: NftModel): ProxyExisting => ({ natChains: [], nft: { chains: [...m.chains.keys()], sets: [...m.containers.keys()] } });
const sorted = <V>(m: Map<string, V>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
const nftView = (m: NftModel) => ({ chains: sorted(m.chains), containers: sorted(m.containers).map(([k, v]) => [k, sorted(v)]) });

/** Two services over the nodeport world: web (app=web) and api (app=api, its own two pods). */
function twoServices(): Topology {
  const t = load('nodeport');
  t.pods.push(
    { ...t.pods[0]!, name: 'api-1', address: '10.244.0.7', labels: { app: 'api' } },
    { ...t.pods[1]!, name: 'api-2', address: '10.244.1.7', labels: { app: 'api' } },
  );
  t.services.push({ ...t.services[0]!, name: 'api', clusterIP: '172.31.0.9', selector: { app: 'api' }, ports: [{ ...t.services[0]!.ports[0]!, nodePort: 32001 }] });
  return t;
}
const killed = (t: Topology, pod: string) => applyPodChanges(t, recordReadiness(emptyChanges(), pod, false));
const scaled = (t: Topology, n: number) => withScale(t, planScale(t, 'web', n));
const terminating = (t: Topology, pod: string) => applyPodChanges(t, recordReadiness(emptyChanges(), pod, true, true));

const CHANGES: [string, () => [Topology, Topology]][] = [
  ['scale web=3 (a new endpoint)', () => [load('nodeport'), scaled(load('nodeport'), 3)]],
  ['kill web-2 (an endpoint gone)', () => [load('nodeport'), killed(load('nodeport'), 'web-2')]],
  ['the last endpoint gone (no endpoints: filter REJECT, no chains)', () => [killed(load('nodeport'), 'web-2'), killed(killed(load('nodeport'), 'web-2'), 'web-1')]],
  ['externalTrafficPolicy Local, a node loses its local endpoint', () => [load('nodeport-local'), killed(load('nodeport-local'), 'web-2')]],
  // node2's NodePort element in no-endpoint-nodeports changes its value: drop, then goto reject-chain
  ['externalTrafficPolicy Local, then no endpoint at all (a map element changes its value)', () => [killed(load('nodeport-local'), 'web-2'), killed(killed(load('nodeport-local'), 'web-2'), 'web-1')]],
  ['a pod terminating (still serving): no longer ready', () => [load('nodeport'), terminating(load('nodeport'), 'web-2')]],
  ['every pod terminating: the fallback to serving-terminating endpoints', () => [terminating(load('nodeport'), 'web-2'), terminating(terminating(load('nodeport'), 'web-2'), 'web-1')]],
  ['sessionAffinity ClientIP, scale up', () => [load('affinity'), scaled(load('affinity'), 3)]],
  ['two services, one changes', () => [twoServices(), killed(twoServices(), 'api-2')]],
];

describe('syncScope: which services a sync rewrites', () => {
  it('only the service whose endpoints changed', () => {
    const before = twoServices();
    expect(syncScope(before, killed(before, 'api-2'))).toEqual({ full: false, services: new Set(['default/api']) });
    expect(syncScope(before, killed(before, 'web-1'))).toEqual({ full: false, services: new Set(['default/web']) });
    expect(syncScope(before, structuredClone(before))).toEqual({ full: false, services: new Set() });
  });

  it('a changed node set or proxy setting means a full sync', () => {
    const before = load('nodeport');
    const after = structuredClone(before);
    after.nodes[1]!.address = '10.240.0.6';
    expect(syncScope(before, after)).toEqual({ full: true });
  });
});

describe('iptables mode: a partial sync leaves what a full sync leaves', () => {
  for (const [name, make] of CHANGES) {
    it(name, () => {
      const [before, after] = make();
      const scope = syncScope(before, after) as Extract<SyncScope, { full: false }>;
      expect(scope.full).toBe(false);
      for (const node of ['node1', 'node2']) {
        const tables = iptablesAfterUp(before, node);
        const sync = planChangeSync(before, after, node, scope, natChains(tables));
        const partial = restore(tables, sync.payload);
        const full = iptablesAfterUp(after, node);
        expect(sorted(partial.get('nat')!)).toEqual(sorted(full.get('nat')!));
        expect(sorted(partial.get('filter')!)).toEqual(sorted(full.get('filter')!));
      }
    });
  }

  it('the payload: every top-level chain complete, only the changed service\'s own chains', () => {
    const before = twoServices();
    const after = killed(before, 'api-2');
    const sync = planChangeSync(before, after, 'node1', syncScope(before, after), undefined);
    const declared = parseSave(sync.payload).chains.get('nat')!;
    const api = (c: string) => c.endsWith(serviceChain('default/api:https', 'tcp').slice(9)) || c === endpointChain('default/api:https', 'tcp', '10.244.0.7:8443');
    expect(declared.filter((c) => SERVICE_CHAIN.test(c)).every(api)).toBe(true);
    expect(declared).toContain(serviceChain('default/api:https', 'tcp'));
    expect(declared).not.toContain(serviceChain('default/web:https', 'tcp'));
    expect(declared).toEqual(expect.arrayContaining(['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ']));
    // KUBE-SERVICES and KUBE-NODEPORTS still send both services on, and end with the NodePort jump.
    const top = (chain: string) => parseSave(sync.payload).rules.filter((r) => r.table === 'nat' && r.chain === chain).map((r) => r.options.get('-j'));
    expect(top('KUBE-SERVICES')).toEqual([serviceChain('default/web:https', 'tcp'), serviceChain('default/api:https', 'tcp'), 'KUBE-NODEPORTS']);
    expect(top('KUBE-NODEPORTS')).toHaveLength(2);
    // No -X without a sweep (existing chains not read); the gone endpoint's chain is reported by the sweep only.
    expect(sync.payload).not.toMatch(/^-X /m);
    expect(sync.removed).toEqual([]);
    expect(sync.added).toEqual([]);
  });

  it('added: the chains the change brings (known without reading the node)', () => {
    const before = load('nodeport');
    const after = scaled(before, 3);
    const sync = planChangeSync(before, after, 'node1', syncScope(before, after), undefined);
    expect(sync.added).toEqual([endpointChain('default/web:https', 'tcp', '10.244.0.2:8443')]);
  });

  it('nothing changed: the top-level chains are written all the same (kube-proxy always writes them)', () => {
    const t = load('nodeport');
    const sync = planChangeSync(t, t, 'node1', syncScope(t, t), undefined);
    expect(parseSave(sync.payload).chains.get('nat')!.filter((c) => SERVICE_CHAIN.test(c))).toEqual([]);
    expect(sync.payload).toMatch(/^-A KUBE-SERVICES .*cluster IP/m);
  });
});

describe('nftables mode: a partial sync leaves what a full sync leaves', () => {
  for (const [name, make] of CHANGES) {
    it(name, () => {
      const [b, a] = make();
      const before = { ...b, kubeProxy: { ...b.kubeProxy, mode: 'nftables' as const } };
      const after = { ...a, kubeProxy: { ...a.kubeProxy, mode: 'nftables' as const } };
      const scope = syncScope(before, after);
      expect(scope.full).toBe(false);
      for (const node of ['node1', 'node2']) {
        const model = nftAfterUp(before, node);
        const sync = planChangeSync(before, after, node, scope, nftExisting(model));
        expect(nftView(nftApply(model, sync.payload))).toEqual(nftView(nftAfterUp(after, node)));
      }
    });
  }

  it('the payload: no skeleton, only the changed service\'s chains, map elements by difference', () => {
    const before = load('nodeport', NFT);
    const after = load('nodeport', { ...NFT, 'pods.web-2.ready': 'false' });
    const model = nftAfterUp(before, 'node1');
    const sync = planChangeSync(before, after, 'node1', syncScope(before, after), nftExisting(model));
    const lines = sync.payload.trimEnd().split('\n');
    expect(lines.some((l) => l.startsWith('add table') || l.startsWith('flush map') || / (services|masquerading|filter-input) /.test(l))).toBe(false);
    expect(lines.filter((l) => l.startsWith('add chain')).every((l) => isServiceChain(l.split(' ')[4]!))).toBe(true);
    // the service and the NodePort keep their map elements: the same value, so not touched
    expect(lines.some((l) => l.includes('element'))).toBe(false);
    expect(sync.removed).toHaveLength(1);
    expect(lines.at(-1)).toBe(`delete chain ip kube-proxy ${sync.removed[0]}`);
  });

  it('a service losing its last endpoint: its map elements move to the no-endpoint maps', () => {
    const before = load('nodeport', { ...NFT, 'pods.web-2.ready': 'false' });
    const after = load('nodeport', { ...NFT, 'pods.web-2.ready': 'false', 'pods.web-1.ready': 'false' });
    const sync = planChangeSync(before, after, 'node1', syncScope(before, after), nftExisting(nftAfterUp(before, 'node1')));
    expect(sync.payload).toContain('delete element ip kube-proxy service-ips { 172.31.0.5 . tcp . 443 }');
    expect(sync.payload).toMatch(/add element ip kube-proxy no-endpoint-services \{ 172\.31\.0\.5 \. tcp \. 443 comment "default\/web:https" : goto reject-chain \}/);
  });
});

describe('largeClusterMode (more than 1000 endpoints)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'partial-sync-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const big = (services: number) => {
    const path = join(dir, `big${services}.yaml`);
    writeFileSync(path, scaleTopology('big', 2, services));
    return loadTopology(path).topology;
  };

  it('drops the comments of endpoint rules only, as appendServiceCommentLocked does', () => {
    const small = kubeProxyRules(big(LARGE_CLUSTER_ENDPOINTS / 2 - 1), 'node1');
    const large = kubeProxyRules(big(LARGE_CLUSTER_ENDPOINTS / 2), 'node1');
    expect([small.largeClusterMode, large.largeClusterMode]).toEqual([false, true]);
    const commented = (r: typeof small, re: RegExp) => r.nat.rules.filter((x) => re.test(x.chain)).every((x) => x.args.includes('--comment'));
    expect(commented(small, /^KUBE-(SEP|SVC)-/)).toBe(true);
    const endpointRules = large.nat.rules.filter((x) => /^KUBE-SEP-/.test(x.chain) || (/^KUBE-SVC-/.test(x.chain) && x.args.includes('-j') && /^KUBE-SEP-/.test(x.args.at(-1)!)));
    expect(endpointRules.length).toBeGreaterThan(2000);
    expect(endpointRules.some((x) => x.args.includes('--comment'))).toBe(false);
    // the rest keep theirs: the cluster IP rules, the masquerade rule of KUBE-SVC
    expect(commented(large, /^KUBE-SERVICES$/)).toBe(true);
    expect(large.nat.rules.filter((x) => /^KUBE-SVC-/.test(x.chain) && x.args.includes('KUBE-MARK-MASQ')).every((x) => x.args.includes('--comment'))).toBe(true);
  });

  it('sweeps stale chains at most once per sync period in iptables mode; nftables mode lists them every sync', () => {
    const large = big(LARGE_CLUSTER_ENDPOINTS / 2);
    expect(isLargeCluster(large)).toBe(true);
    expect(sweepsStaleChains(large, 1000)).toBe(false);
    expect(sweepsStaleChains(large, SYNC_PERIOD_MS + 1)).toBe(true);
    expect(sweepsStaleChains(large, undefined)).toBe(true);
    expect(sweepsStaleChains(load('nodeport'), 0)).toBe(true);
    expect(sweepsStaleChains({ ...large, kubeProxy: { ...large.kubeProxy, mode: 'nftables' } }, 0)).toBe(true);
  });
});
