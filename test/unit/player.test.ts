import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConntrack } from '../../lab/kernel/conntrack.js';
import { pathHops } from '../../lab/picture/hops.js';
import { leaves, playerPath } from '../../lab/picture/walk-steps.js';
import { parseSave } from '../../lab/plan/kube-proxy/rules.js';
import { loadTopology } from '../../lab/topology/load.js';
import { summarise } from '../../lab/verify/engine.js';
import { loadEvidence } from '../../lab/verify/evidence.js';
import { iptablesTranslation, nftStatements } from '../../lab/verify/nat-rules.js';
import { loadWalkthrough } from '../../lab/verify/walkthrough.js';

/** The player's data: the rules found on a translating node, and each path's hops as the player walks them. */

const FIX = join(import.meta.dirname, '..', 'fixtures');
const ENTRY = parseConntrack('tcp 6 119 TIME_WAIT src=10.241.0.4 dst=10.240.0.4 sport=41030 dport=32000 src=10.244.1.2 dst=10.240.0.4 sport=8443 dport=14124 [ASSURED] mark=0 use=1')[0]!;

describe('the rules that translated a connection (iptables mode)', () => {
  const rules = parseSave(readFileSync(join(FIX, 'iptables-save', 'nodeport-node1.save'), 'utf8')).rules;
  const t = iptablesTranslation('node1', ENTRY, ['10.240.0.4'], rules);
  it('walks from PREROUTING through the NodePort chains to the DNAT to the endpoint conntrack names', () => {
    expect(t.dnat.map((r) => r.chain)).toEqual(['PREROUTING', 'KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-EXT-54WW65JLHZHRV7HC', 'KUBE-SVC-54WW65JLHZHRV7HC', 'KUBE-SEP-H6OLLUBTYNZRC5BX']);
    expect(t.dnat.at(-1)).toMatchObject({ rule: '-p tcp -m tcp -j DNAT --to-destination 10.244.1.2:8443', packets: 1, comment: 'default/web:https' });
    expect(t.snat.map((r) => r.rule)).toEqual(['-j KUBE-POSTROUTING', '-j MASQUERADE --random-fully']);
  });
  it('counts what the run added, from the counters before it', () => {
    const before = rules.map((r) => ({ ...r, counters: { packets: 0, bytes: 0 } }));
    expect(iptablesTranslation('node1', ENTRY, ['10.240.0.4'], rules, before).dnat.at(-1)!.added).toBe(1);
  });
  it('finds no DNAT when the node is not where the NodePort lives', () => {
    expect(iptablesTranslation('node1', ENTRY, ['10.240.0.9'], rules).dnat.map((r) => r.chain)).not.toContain('KUBE-NODEPORTS');
  });
});

describe('nft list table as statements', () => {
  it('splits chains into rules and maps into elements', () => {
    const s = nftStatements('table ip kube-proxy {\n\tmap service-nodeports {\n\t\ttype inet_proto . inet_service : verdict\n\t\telements = { tcp . 32000 : goto external-X,\n\t\t\t     tcp . 32001 : goto external-Y }\n\t}\n\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t}\n}\n');
    expect(s).toEqual([
      { chain: 'map service-nodeports', text: 'tcp . 32000 : goto external-X' },
      { chain: 'map service-nodeports', text: 'tcp . 32001 : goto external-Y' },
      { chain: 'services', text: 'ip daddr . meta l4proto . th dport vmap @service-ips' },
    ]);
  });
});

describe('player hops of a saved run', () => {
  const { topology, path } = loadTopology('nodeport');
  const { walkthrough } = loadWalkthrough(topology, path);
  const evidence = loadEvidence(join(FIX, 'runs', 'nodeport'));
  const result = summarise(topology, walkthrough, '/tmp/run', evidence, 7);
  const p = result.paths.find((x) => x.flow?.answer?.pod === 'web-2')!;
  const walk = playerPath(topology, p, pathHops(p.flow!, evidence.packets), undefined);
  it('says in or out at every point, the router included', () => {
    expect(walk.hops.filter((h) => h.direction === 'request').map((h) => `${h.point} ${h.way}`)).toEqual([
      'client:eth0 out', 'router:br-nodes out', 'node1:eth0 in', 'node1:eth0 out', 'router:br-nodes out', 'node2:eth0 in', 'node2:cbr0 out', 'web-2:eth0 in',
    ]);
    expect(walk.hops.filter((h) => h.direction === 'reply').map((h) => h.way).join(' ')).toBe('out in out across in out in in');
  });
  it('lights the link each hop is on, and names what translated it', () => {
    expect(walk.hops.slice(0, 8).map((h) => h.link)).toEqual(['client:eth0', 'node1:eth0', 'node1:eth0', 'node1:eth0', 'node2:eth0', 'node2:eth0', 'web-2:eth0', 'web-2:eth0']);
    expect(walk.hops[3]!.cause).toMatchObject({ by: 'rules', node: 'node1' });
    expect(walk.hops[3]!.cause!.text).toMatch(/^DNAT 10\.240\.0\.4:32000 → 10\.244\.1\.2:8443, SNAT \(MASQUERADE\)/);
    expect(walk.hops.filter((h) => h.cause?.by === 'conntrack')).toHaveLength(1);
    expect(walk.hops.filter((h) => h.conntrack).every((h) => h.host === 'node1')).toBe(true);
  });
  it('links each step to the hop that shows it', () => {
    const at = p.steps.map((s, i) => [s.at, walk.stepHops[i]!] as const);
    for (const [point, hop] of at) if (hop >= 0) expect([walk.hops[hop]!.point, walk.hops[hop]!.host]).toContain(point);
    expect(at.filter(([, hop]) => hop >= 0).length).toBeGreaterThan(p.steps.length / 2);
  });
  it('a router bridge is out toward its own network, in from the other', () => {
    expect(leaves(topology, 'router', 'br-nodes', '10.244.1.2')).toBe(true);
    expect(leaves(topology, 'router', 'br-nodes', '10.241.0.4')).toBe(false);
  });
});
