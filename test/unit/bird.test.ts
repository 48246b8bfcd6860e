import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BGP_TIMERS, birdConfigText, birdProtocolName } from '../../lab/plan/bird.js';
import { planNetwork, type NamespacePlan } from '../../lab/plan/network.js';
import { bgpSessions, nodeAs, ROUTER_AS } from '../../lab/plan/pod-network/bgp.js';
import { podNetworkOf } from '../../lab/plan/pod-network/index.js';
import { packageOf, REQUIRED_TOOLS } from '../../lab/kernel/preflight.js';
import { loadTopology } from '../../lab/topology/load.js';
import { loadWalkthrough } from '../../lab/verify/walkthrough.js';
import { parseProtocols } from '../../lab/kernel/bird.js';
import type { Evidence } from '../../lab/verify/evidence.js';
import type { Flow } from '../../lab/verify/flows.js';
import { flowJudges, groupJudges } from '../../lab/verify/judges.js';
import { problemsOf } from './helpers.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const load = (scenario = 'nodeport') => loadTopology(scenario, { 'podNetwork.mode': 'bgp' }).topology;
const configOf = (plan: ReturnType<typeof planNetwork>, host: string) => plan.podNetwork.daemons.find((d) => d.host === host)!.files[0]!.content;
const routes = (n: NamespacePlan) => n.batch.filter((l) => l.startsWith('route '));

const work = mkdtempSync(join(tmpdir(), 'lab-bird-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** `bird -p`: parse the configuration and exit, as BIRD itself reads it (no namespace, no socket). */
function birdParses(config: string): { ok: boolean; output: string } {
  const file = join(work, `c${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(file, config);
  const r = spawnSync('bird', ['-p', '-c', file], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

const hasBird = spawnSync('bird', ['--version']).status === 0;

describe('BIRD configuration text (lab/plan/bird.ts)', () => {
  const text = birdConfigText({
    routerId: '10.240.0.4',
    announces: ['10.244.0.0/24'],
    installsLearned: false,
    peers: [{ name: 'router', localAddress: '10.240.0.4', localAs: 64513, address: '10.240.0.1', as: 64512, imports: false, exports: true, passive: false }],
  });

  it('originates the announced prefix as a static blackhole, exported to the peer only', () => {
    expect(text).toContain('router id 10.240.0.4;');
    expect(text).toMatch(/protocol static announced \{\n {2}ipv4;\n {2}route 10\.244\.0\.0\/24 blackhole;\n\}/);
    expect(text).toContain('export where proto = "announced";');
    expect(text).toContain('import none;');
    expect(text).not.toContain('protocol kernel');
  });

  it('uses the short timers on every session', () => {
    expect(text).toContain(`hold time ${BGP_TIMERS.hold};`);
    expect(text).toContain(`keepalive time ${BGP_TIMERS.keepalive};`);
    expect(text).toContain(`connect retry time ${BGP_TIMERS.connectRetry};`);
    expect(BGP_TIMERS.hold).toBeGreaterThanOrEqual(3); // BGP refuses hold times of 1 and 2
  });

  it.skipIf(!hasBird)('bird -p refuses a broken configuration (the parse check can fail)', () => {
    const r = birdParses(text.replace('hold time 3;', 'hold time;'));
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(/syntax error|error/i);
  });
});

describe('podNetwork mode bgp: the plan', () => {
  const t = load();
  const plan = planNetwork(t);

  it('one BIRD per node and per router on a node network, each in its namespace with files under the state folder', () => {
    expect(plan.podNetwork.daemons.map((d) => [d.host, d.ns, d.name])).toEqual([
      ['router', 'nodeport-router', 'bird'],
      ['node1', 'nodeport-node1', 'bird'],
      ['node2', 'nodeport-node2', 'bird'],
    ]);
    const router = plan.podNetwork.daemons[0]!;
    expect(router.files.map((f) => f.path)).toEqual(['bird/router.conf']);
    expect(router.argv).toEqual(['bird', '-f', '-c', expect.stringMatching(/\/nodeport\/bird\/router\.conf$/), '-s', expect.stringMatching(/\/nodeport\/bird\/router\.ctl$/), '-P', expect.stringMatching(/\/nodeport\/bird\/router\.pid$/)]);
  });

  it('no static route into a node pod CIDR anywhere: the router learns them (nodes keep the cluster range via the router)', () => {
    for (const n of plan.namespaces) expect(routes(n).filter((r) => /10\.244\.[01]\.0\/24/.test(r))).toEqual([]);
    expect(routes(plan.namespaces.find((n) => n.host === 'router')!)).toEqual([]);
  });

  it('each node announces its own pod CIDR to the router, with its address as router id and its own AS', () => {
    const node2 = configOf(plan, 'node2');
    expect(node2).toContain('router id 10.240.0.5;');
    expect(node2).toContain('route 10.244.1.0/24 blackhole;');
    expect(node2).not.toContain('10.244.0.0/24');
    expect(node2).toContain(`local 10.240.0.5 as ${nodeAs(t, t.nodes[1]!)};`);
    expect(node2).toContain(`neighbor 10.240.0.1 as ${ROUTER_AS};`);
    expect(nodeAs(t, t.nodes[1]!)).toBe(64514);
  });

  it('the router peers with every node, imports their routes and installs them in the kernel', () => {
    const router = configOf(plan, 'router');
    expect(router).toContain('router id 10.240.0.1;');
    expect(router).toContain('neighbor 10.240.0.4 as 64513;');
    expect(router).toContain('neighbor 10.240.0.5 as 64514;');
    expect(router).toContain('export where source = RTS_BGP;');
    expect(router).not.toContain('protocol static');
    // The router waits for the nodes to dial: it never dials a BIRD that is not up yet.
    expect(router.match(/passive on;/g)).toHaveLength(2);
    expect(configOf(plan, 'node1')).not.toContain('passive');
    expect(bgpSessions(t).map((s) => `${s.router.name}-${s.node.name}`)).toEqual(['router-node1', 'router-node2']);
  });

  it('draws one BGP session per router and node', () => {
    expect(plan.podNetwork.drawn).toEqual([
      { a: 'router', b: 'node1', kind: 'session', label: 'BGP AS64512 ↔ AS64513' },
      { a: 'router', b: 'node2', kind: 'session', label: 'BGP AS64512 ↔ AS64514' },
    ]);
  });

  it('says the hop between nodes follows a route learned by BGP', () => {
    expect(podNetworkOf(t).crossNodeHop(t, t.nodes[0]!, t.nodes[1]!)).toMatchObject({ viaRouter: true, summary: expect.stringMatching(/learned by BGP from node2/) });
  });

  it.skipIf(!hasBird)('bird -p parses every generated configuration of every seed scenario', () => {
    for (const scenario of ['nodeport', 'clusterip', 'loadbalancer']) {
      for (const d of planNetwork(load(scenario)).podNetwork.daemons) {
        const r = birdParses(d.files[0]!.content);
        expect(r, `${scenario} ${d.host}: ${r.output}`).toMatchObject({ ok: true });
      }
    }
  });
});

describe('podNetwork mode bgp: bad input', () => {
  it('a node pod CIDR BIRD would announce outside the pool is refused at its field, with file and line', () => {
    const problems = problemsOf(() => loadTopology('nodeport', { 'podNetwork.mode': 'bgp', 'nodes.node2.podCIDR': '10.250.1.0/24' }));
    expect(problems).toContainEqual(expect.objectContaining({ field: 'nodes[1].podCIDR', message: '10.250.1.0/24 is not inside cluster.podCIDR 10.244.0.0/16' }));
  });

  it('a node with no router on its network (no BGP peer) is refused at the network, with file and line', () => {
    const problems = problemsOf(() => loadTopology(join(FIXTURES, 'bad', 'bgp-node-without-router.yaml')));
    expect(problems).toContainEqual(expect.objectContaining({ field: 'networks[1].name', line: 9, message: expect.stringMatching(/no router has an interface on network "edge"/) }));
  });

  it('a host named like a BIRD keyword is still a valid protocol name', () => {
    for (const d of planNetwork(load()).podNetwork.daemons) expect(d.files[0]!.content).not.toMatch(/protocol bgp (router|node1|node2) /);
    expect(birdProtocolName('edge-router')).toBe('bgp_edge_router');
  });
});

it('preflight names the Debian package bird2 for bird and birdc, which only bgp mode needs', () => {
  expect([packageOf('bird'), packageOf('birdc')]).toEqual(['bird2', 'bird2']);
  expect(Object.keys(REQUIRED_TOOLS)).not.toContain('bird');
});

describe('birdc show protocols, parsed', () => {
  // As BIRD 2.0.12 prints it (the router of a nodeport lab, node2's BIRD stopped).
  const text = [
    'BIRD 2.0.12 ready.',
    'Name       Proto      Table      State  Since         Info',
    'device1    Device     ---        up     19:02:11.120  ',
    'kernel1    Kernel     master4    up     19:02:11.120  ',
    'bgp_node1  BGP        ---        up     19:02:11.301  Established   ',
    'bgp_node2  BGP        ---        start  19:02:15.877  Active        Socket: Connection refused',
  ].join('\n');

  it('gives each protocol its state and info', () => {
    expect(parseProtocols(text).filter((p) => p.proto === 'BGP')).toEqual([
      { name: 'bgp_node1', proto: 'BGP', state: 'up', info: 'Established' },
      { name: 'bgp_node2', proto: 'BGP', state: 'start', info: 'Active Socket: Connection refused' },
    ]);
  });
});

describe('verify: the bgp checks', () => {
  const evidence = {
    routes: { router: { '10.244.1.2': 'br-nodes' } },
    routeSources: { router: { '10.244.1.2': { dst: '10.244.1.0/24', via: '10.240.0.5', proto: 'bird' } } },
    bgpSessions: { router: [{ peer: 'node1', state: 'up', info: 'Established' }, { peer: 'node2', state: 'start', info: 'Active' }] },
  } as unknown as Evidence;
  const ctx = { at: 'router', groupFlows: [], evidence, flow: {} as Flow, pat: (x: string) => ({ ip: x }) as never };

  it('a route step passes only with the gateway and protocol it names', () => {
    expect(flowJudges.route({ to: '10.244.1.2', dev: 'br-nodes', via: '10.240.0.5', proto: 'bird' }, ctx)).toMatchObject({ ok: true, seen: 'via br-nodes: 10.244.1.0/24 via 10.240.0.5 proto bird' });
    expect(flowJudges.route({ to: '10.244.1.2', dev: 'br-nodes', proto: 'static' }, ctx).ok).toBe(false);
    expect(flowJudges.route({ to: '10.244.1.2', dev: 'br-nodes', via: '10.240.0.4' }, ctx).ok).toBe(false);
    const staticRoute = { ...evidence, routeSources: { router: { '10.244.1.2': { dst: '10.244.1.0/24', via: '10.240.0.5', proto: 'boot' } } } } as Evidence;
    expect(flowJudges.route({ to: '10.244.1.2', dev: 'br-nodes', proto: 'bird' }, { ...ctx, evidence: staticRoute })).toMatchObject({ ok: false, seen: 'via br-nodes: 10.244.1.0/24 via 10.240.0.5 proto boot' });
  });

  it('a bgpSession step passes only for an Established session', () => {
    expect(groupJudges.bgpSession({ peer: 'node1' }, ctx)).toMatchObject({ ok: true, seen: 'router ↔ node1: up Established' });
    expect(groupJudges.bgpSession({ peer: 'node2' }, ctx)).toMatchObject({ ok: false, seen: 'router ↔ node2: start Active' });
    expect(groupJudges.bgpSession({ peer: 'node3' }, ctx).ok).toBe(false);
    expect(groupJudges.bgpSession({ peer: 'node1' }, { ...ctx, at: 'node1' })).toMatchObject({ ok: false, seen: 'no BIRD answering in node1' });
  });

  it('a bgp step at a host that is no node or router, or naming an unknown peer, is refused with its line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lab-bgp-walk-'));
    try {
      writeFileSync(join(dir, 't.yaml'), readFileSync(join(FIXTURES, '..', '..', 'topologies', 'nodeport.yaml'), 'utf8').replace('walkthrough: nodeport.walkthrough.yaml', 'walkthrough: w.yaml'));
      writeFileSync(join(dir, 'w.yaml'), ['title: t', 'seed: s', 'traffic: { from: client, to: "10.240.0.4:32000" }', 'observe: [client:eth0]', 'paths:', '  - name: p', '    endpoint: web-2', '    steps:', '      - { step: "1", title: a, at: client, expect: { bgpSession: { peer: node2 } } }', '      - { step: "2", title: b, at: router, expect: { bgpSession: { peer: nobody } } }', ''].join('\n'));
      const { topology, path } = loadTopology(join(dir, 't.yaml'), { 'podNetwork.mode': 'bgp' });
      const problems = problemsOf(() => loadWalkthrough(topology, path));
      expect(problems).toEqual([
        expect.objectContaining({ field: 'paths[0].steps[0].at', line: 9, message: '"client" is not a node or router of this topology' }),
        expect.objectContaining({ field: 'paths[0].steps[1].expect.bgpSession.peer', line: 10, message: '"nobody" is not a node or router of this topology' }),
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
