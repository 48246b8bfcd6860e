import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadBalancerChecks } from '../../lab/plan/kube-proxy/health.js';
import { announcementChanges } from '../../lab/plan/load-balancer/announcements.js';
import { loadBalancerOf } from '../../lab/plan/load-balancer/index.js';
import { electionKey, electionOrder, l2Leaders } from '../../lab/plan/load-balancer/l2-election.js';
import { planLab } from '../../lab/plan/plan.js';
import { loadTopology } from '../../lab/topology/load.js';
import type { Topology } from '../../lab/topology/schema.js';
import { topologyGraph } from '../../lab/picture/graph.js';
import { problemsOf } from './helpers.js';

const load = (scenario: string, more: Record<string, string> = {}) => loadTopology(scenario, { 'loadBalancer.mode': 'bgp', ...more }).topology;
const withPod = (t: Topology, pod: string, change: Partial<Topology['pods'][number]>): Topology => ({ ...t, pods: t.pods.map((p) => (p.name === pod ? { ...p, ...change } : p)) });
const announcers = (t: Topology) => loadBalancerOf(t).announcements(t).map((a) => `${a.ip} ${a.nodes.join(',') || '-'}`);
const configOf = (t: Topology, host: string) => planLab(t).podNetwork.daemons.find((d) => d.host === host)!.files[0]!.content;
const routerOf = (t: Topology) => planLab(t).namespaces.find((n) => n.host === 'router')!;

const work = mkdtempSync(join(tmpdir(), 'lab-mlb-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const hasBird = spawnSync('bird', ['--version']).status === 0;
const birdParses = (config: string) => {
  const file = join(work, `c${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(file, config);
  const r = spawnSync('bird', ['-p', '-c', file], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
};

describe('loadBalancer mode static (the default): the plan it always was', () => {
  for (const scenario of ['loadbalancer', 'loadbalancer-local', 'nodeport']) {
    it(`${scenario}: the file's routes, no speaker, nothing announced; the same plan as mode static spelled out`, () => {
      const t = loadTopology(scenario).topology;
      expect(t.loadBalancer.mode).toBe('static');
      expect(loadBalancerOf(t).announcements(t)).toEqual([]);
      expect(JSON.stringify(planLab(t))).toBe(JSON.stringify(planLab(loadTopology(scenario, { 'loadBalancer.mode': 'static' }).topology)));
      expect(planLab(t).podNetwork.daemons).toEqual([]);
    });
  }

  it('keeps the ECMP route to the LB IP that the file writes, and the health checks that steer it', () => {
    const t = loadTopology('loadbalancer-local').topology;
    expect(routerOf(t).batch).toContain('route add 10.240.0.100/32 nexthop via 10.240.0.4 nexthop via 10.240.0.5');
    expect(loadBalancerChecks(t)).toHaveLength(1);
  });
});

describe("loadBalancer mode bgp: who announces (MetalLB's ShouldAnnounce)", () => {
  it('Local: each node with a ready local endpoint, and only those', () => {
    const t = load('loadbalancer-local');
    expect(announcers(t)).toEqual(['10.240.0.100 node1,node2']);
    expect(announcers(withPod(t, 'web-2', { ready: false }))).toEqual(['10.240.0.100 node1']);
    expect(announcers(withPod(withPod(t, 'web-2', { ready: false }), 'web-1', { ready: false }))).toEqual(['10.240.0.100 -']);
  });

  it('a terminating pod that still serves keeps its node announcing (EndpointCanServe: ready or serving)', () => {
    const t = load('loadbalancer-local');
    expect(announcers(withPod(t, 'web-2', { terminating: true }))).toEqual(['10.240.0.100 node1,node2']);
    expect(announcers(withPod(t, 'web-2', { terminating: true, ready: false }))).toEqual(['10.240.0.100 node1']);
  });

  it('Cluster: every node while the Service has a serving endpoint anywhere, none after the last', () => {
    const t = load('loadbalancer');
    const oneLeft = withPod(t, 'web-2', { ready: false });
    expect(announcers(oneLeft)).toEqual(['10.240.0.100 node1,node2']);
    const none = withPod(oneLeft, 'web-1', { ready: false });
    expect(announcers(none)).toEqual(['10.240.0.100 -']);
    const lb = loadBalancerOf(t);
    expect(announcementChanges(lb.announcements(oneLeft), lb.announcements(none))).toEqual([
      { ip: '10.240.0.100', node: 'node1', change: 'withdrawn' },
      { ip: '10.240.0.100', node: 'node2', change: 'withdrawn' },
    ]);
    expect(announcementChanges(lb.announcements(none), lb.announcements(t)).map((c) => c.change)).toEqual(['announced', 'announced']);
  });

  it('the router routes a sync awaits: one next hop per announcing node, none when withdrawn', () => {
    const t = load('loadbalancer-local');
    const lb = loadBalancerOf(t);
    expect(lb.expectedRoutes(t)).toEqual([{ router: 'router', ns: 'loadbalancer-local-router', to: '10.240.0.100/32', via: ['10.240.0.4', '10.240.0.5'] }]);
    expect(lb.expectedRoutes(withPod(t, 'web-1', { ready: false }))[0]!.via).toEqual(['10.240.0.5']);
  });
});

describe('loadBalancer mode bgp: the plan', () => {
  const t = load('loadbalancer-local');

  it('no static route to the LB IP anywhere; the pod-CIDR routes stay; the router hashes on ports; no health-check steering', () => {
    const plan = planLab(t);
    for (const n of plan.namespaces) expect(n.batch.filter((l) => l.includes('10.240.0.100'))).toEqual([]);
    expect(routerOf(t).batch.filter((l) => l.startsWith('route '))).toEqual(['route add 10.244.0.0/24 via 10.240.0.4', 'route add 10.244.1.0/24 via 10.240.0.5']);
    expect(routerOf(load('loadbalancer', { 'routers.router.hashPorts': 'false' })).sysctls['net.ipv4.fib_multipath_hash_policy']).toBe('1');
    expect(loadBalancerChecks(t)).toEqual([]);
  });

  it("each node's BIRD originates the /32 it announces; the router's merges the paths into one multipath route", () => {
    expect(planLab(t).podNetwork.daemons.map((d) => d.host)).toEqual(['router', 'node1', 'node2']);
    expect(configOf(t, 'node2')).toContain('route 10.240.0.100/32 blackhole;');
    expect(configOf(t, 'node2')).not.toContain('10.244.1.0/24');
    expect(configOf(withPod(t, 'web-2', { ready: false }), 'node2')).not.toContain('10.240.0.100');
    expect(configOf(t, 'router')).toContain('merge paths on;');
    expect(planLab(t).podNetwork.daemons[0]!.ready.routes).toEqual(['10.240.0.100/32']);
  });

  it('with the pod network in bgp mode too, one BIRD per node carries its pod CIDR and the LB IP', () => {
    const both = load('loadbalancer', { 'podNetwork.mode': 'bgp' });
    expect(planLab(both).podNetwork.daemons).toHaveLength(3);
    expect(configOf(both, 'node1')).toMatch(/route 10\.244\.0\.0\/24 blackhole;\n {2}route 10\.240\.0\.100\/32 blackhole;/);
    // The pod network's bgp mode alone keeps its one-best-path router.
    expect(configOf(loadTopology('loadbalancer', { 'podNetwork.mode': 'bgp' }).topology, 'router')).not.toContain('merge paths');
  });

  it.skipIf(!hasBird)('bird -p parses every configuration, in both pod network modes and with no announcement left', () => {
    for (const topology of [t, load('loadbalancer', { 'podNetwork.mode': 'bgp' }), withPod(withPod(t, 'web-1', { ready: false }), 'web-2', { ready: false })]) {
      for (const d of planLab(topology).podNetwork.daemons) expect(birdParses(d.files[0]!.content), d.host).toMatchObject({ ok: true });
    }
  });
});

describe('loadBalancer mode: bad input', () => {
  it('an unknown mode is refused at the field, naming the --set that set it', () => {
    const problems = problemsOf(() => loadTopology('loadbalancer', { 'loadBalancer.mode': 'l3' }));
    expect(problems).toContainEqual(expect.objectContaining({ file: '--set loadBalancer.mode=l3', field: 'loadBalancer.mode' }));
  });
});

describe("MetalLB's layer-2 election (lab/plan/load-balancer/l2-election.ts)", () => {
  // sha256("node1#10.240.0.100") starts 0e80…, node2's f42c…; for 10.240.0.101: a837… against 25fe….
  it('sorts the eligible nodes by SHA-256 of "<node>#<ip>": not by name, and per IP', () => {
    expect(electionKey('node1', '10.240.0.100').toString('hex').slice(0, 8)).toBe('0e808f3b');
    expect(electionOrder(['node1', 'node2'], '10.240.0.100')).toEqual(['node1', 'node2']);
    expect(electionOrder(['node1', 'node2'], '10.240.0.101')).toEqual(['node2', 'node1']);
    expect(electionOrder(['node2', 'node1'], '10.240.0.101')).toEqual(['node2', 'node1']);
  });

  it('Local: the leader is elected among the nodes with a serving endpoint; it moves when the leader loses its pod', () => {
    const t = loadTopology('loadbalancer-local').topology;
    const second: Topology = { ...t, services: t.services.map((s) => ({ ...s, loadBalancerIPs: ['10.240.0.101'] })) };
    expect(l2Leaders(second).map((l) => l.leader)).toEqual(['node2']);
    expect(l2Leaders(withPod(second, 'web-2', { ready: false })).map((l) => [l.leader, l.eligible])).toEqual([['node1', ['node1']]]);
    expect(l2Leaders(withPod(withPod(second, 'web-2', { ready: false }), 'web-1', { ready: false }))[0]!.leader).toBeUndefined();
  });

  it('Cluster: every node is eligible while the Service has a serving endpoint anywhere', () => {
    const t = loadTopology('loadbalancer').topology;
    expect(l2Leaders(withPod(t, 'web-1', { ready: false }))).toEqual([{ service: 'default/web', ip: '10.240.0.100', eligible: ['node1', 'node2'], leader: 'node1' }]);
  });
});

describe('loadBalancer mode l2: the plan and bad input', () => {
  const t = loadTopology('loadbalancer-local', { 'loadBalancer.mode': 'l2' }).topology;

  it('one ARP speaker per node, owning the IPs it leads; no route to the LB IP anywhere; no BIRD', () => {
    const daemons = planLab(t).podNetwork.daemons;
    expect(daemons.map((d) => [d.host, d.name, d.files[0]!.content])).toEqual([
      ['node1', 'arp-speaker', '10.240.0.100\n'],
      ['node2', 'arp-speaker', ''],
    ]);
    expect(daemons[0]!.argv.slice(-2)).toEqual(['eth0', expect.stringMatching(/\/loadbalancer-local\/l2\/node1\.owned$/)]);
    expect(daemons[0]!.ready.logLine).toBe('ready');
    for (const n of planLab(t).namespaces) expect(n.batch.filter((l) => l.includes('10.240.0.100'))).toEqual([]);
    const failover = withPod(t, 'web-1', { ready: false });
    expect(planLab(failover).podNetwork.daemons.map((d) => d.files[0]!.content)).toEqual(['', '10.240.0.100\n']);
    expect(loadBalancerOf(t).expectedNeighbours(failover)).toEqual([{ router: 'router', ns: 'loadbalancer-local-router', ip: '10.240.0.100', node: 'node2', nodeNs: 'loadbalancer-local-node2' }]);
  });

  it('in a file: refused with the file, the line and the field', () => {
    const problems = problemsOf(() => loadTopology(join(import.meta.dirname, '..', 'fixtures', 'bad', 'l2-ip-outside-node-network.yaml')));
    expect(problems).toEqual([expect.objectContaining({ field: 'services[0].loadBalancerIPs[0]', line: 25, file: expect.stringMatching(/l2-ip-outside-node-network\.yaml$/) })]);
  });

  it('an LB IP outside every node network is refused at its field (ARP stays on one network)', () => {
    const problems = problemsOf(() => loadTopology('loadbalancer-local', { 'loadBalancer.mode': 'l2', 'services.web.loadBalancerIPs': '[10.241.0.100]' }));
    expect(problems).toContainEqual(expect.objectContaining({ field: 'services[0].loadBalancerIPs[0]', message: expect.stringMatching(/outside every node network/) }));
    expect(problemsOf(() => loadTopology('loadbalancer-local', { 'loadBalancer.mode': 'bgp', 'services.web.loadBalancerIPs': '[10.241.0.100]' })).filter((p) => /node network/.test(p.message))).toEqual([]);
  });
});

describe('the pictures say who announces what', () => {
  it('bgp: the router lists each /32 and its announcing nodes, and the MetalLB sessions are drawn; l2: the leader', () => {
    const bgp = topologyGraph(withPod(load('loadbalancer-local'), 'web-2', { ready: false }));
    expect(bgp.hosts.find((h) => h.name === 'router')!.interfaces).toContain('BGP 10.240.0.100/32 from node1');
    expect(bgp.overlays.map((o) => o.label)).toEqual(['BGP AS64512 ↔ AS64513 (MetalLB)', 'BGP AS64512 ↔ AS64514 (MetalLB)']);
    const l2 = topologyGraph(loadTopology('loadbalancer-local', { 'loadBalancer.mode': 'l2' }).topology);
    expect(l2.hosts.find((h) => h.name === 'router')!.interfaces).toContain('ARP 10.240.0.100 (leader) from node1');
    expect(topologyGraph(loadTopology('loadbalancer-local').topology).hosts.find((h) => h.name === 'router')!.interfaces).toContain('route 10.240.0.100 via 10.240.0.4, 10.240.0.5');
  });
});
