import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { planNetwork, type NamespacePlan } from '../../lab/plan/network.js';
import { podNetworkOf } from '../../lab/plan/pod-network/index.js';
import { planLab, planPods } from '../../lab/plan/plan.js';
import { loadTopology } from '../../lab/topology/load.js';
import { POD_NETWORK_MODES } from '../../lab/topology/schema.js';
import { problemsOf } from './helpers.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const load = (mode: string, scenario = 'nodeport') => loadTopology(scenario, { 'podNetwork.mode': mode }).topology;
const ns = (plan: { namespaces: NamespacePlan[] }, host: string) => plan.namespaces.find((n) => n.host === host)!;
const routes = (n: NamespacePlan) => n.batch.filter((l) => l.startsWith('route '));

describe('podNetwork: the mode field', () => {
  it('defaults to routed, and routed plans exactly what the file says', () => {
    const t = loadTopology('nodeport').topology;
    expect(t.podNetwork.mode).toBe('routed');
    const plan = planNetwork(t);
    expect(routes(ns(plan, 'router'))).toEqual(['route add 10.244.0.0/24 via 10.240.0.4', 'route add 10.244.1.0/24 via 10.240.0.5']);
    expect(ns(plan, 'node1').batch.some((l) => l.includes('flannel') || l.includes('mtu'))).toBe(false);
    expect(ns(plan, 'node1').bridgeBatch).toEqual([]);
    expect(plan.podNetwork).toMatchObject({ mode: 'routed', daemons: [], drawn: [] });
  });

  it('is settable with --set on every built-in mode name', () => {
    for (const mode of POD_NETWORK_MODES) expect(load(mode).podNetwork.mode).toBe(mode);
  });

  it('an unknown mode is refused at podNetwork.mode, naming the --set that gave it', () => {
    const [p, ...rest] = problemsOf(() => load('calico'));
    expect(rest).toEqual([]);
    expect(p!.field).toBe('podNetwork.mode');
    // A value that came from --set is reported at that argument, not at a line of the file.
    expect(p!.file).toBe('--set podNetwork.mode=calico');
    expect(p!.message).toMatch(/routed.*host-gw.*vxlan.*bgp/);
  });

});

describe('podNetwork mode host-gw', () => {
  const plan = planNetwork(load('host-gw'));

  it('each node routes every peer pod CIDR via the peer node address on eth0', () => {
    expect(routes(ns(plan, 'node1'))).toContain('route add 10.244.1.0/24 via 10.240.0.5 dev eth0');
    expect(routes(ns(plan, 'node2'))).toContain('route add 10.244.0.0/24 via 10.240.0.4 dev eth0');
  });

  it('the router carries no pod-CIDR route', () => {
    expect(routes(ns(plan, 'router'))).toEqual([]);
  });

  it('keeps a router route that is not the pod network (the load balancer IP of loadbalancer)', () => {
    const lb = planNetwork(load('host-gw', 'loadbalancer'));
    const kept = routes(ns(lb, 'router'));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.every((l) => !l.includes('10.244.'))).toBe(true);
  });

  it('nodes on different networks are refused at the node, naming podNetwork, with its line', () => {
    const problems = problemsOf(() => loadTopology(join(FIXTURES, 'bad', 'host-gw-two-networks.yaml')));
    expect(problems.map((p) => [p.field, p.line])).toEqual([['nodes[1].network', 25]]);
    expect(problems[0]!.message).toMatch(/podNetwork mode host-gw needs every node on one L2 network/);
  });
});

describe('podNetwork mode vxlan (flannel)', () => {
  const t = load('vxlan');
  const plan = planNetwork(t);
  const node1 = ns(plan, 'node1');

  it('creates flannel.1 as flanneld does: VNI 1, port 8472, nolearning, local node IP on eth0, MTU 1450, a /32 at the pod CIDR network address', () => {
    expect(node1.batch).toContain('link add flannel.1 address 0e:fa:0a:f0:00:04 mtu 1450 type vxlan id 1 local 10.240.0.4 dev eth0 dstport 8472 nolearning');
    expect(node1.batch).toContain('addr add 10.244.0.0/32 dev flannel.1');
    expect(node1.batch.indexOf('link set flannel.1 up')).toBeLessThan(node1.batch.indexOf('route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink'));
  });

  it('per peer: an onlink route, a permanent neighbour with the peer VTEP MAC, and an FDB entry to the peer node', () => {
    expect(node1.batch).toContain('neigh add 10.244.1.0 lladdr 0e:fa:0a:f0:00:05 dev flannel.1 nud permanent');
    expect(node1.bridgeBatch).toEqual(['fdb add 0e:fa:0a:f0:00:05 dev flannel.1 dst 10.240.0.5 self permanent']);
  });

  it('cbr0, every pod eth0 and its node-side veth get the overlay MTU', () => {
    expect(node1.batch.find((l) => l.startsWith('link add cbr0'))).toMatch(/ mtu 1450 type bridge$/);
    expect(node1.batch).toContain('link set veth-web-1 mtu 1450 up');
    expect(ns(plan, 'web-2').batch).toContain('link set eth0 mtu 1450 up');
    // A pod added later (lab scale) is built the same way.
    expect(planPods(t, ['web-2']).namespaces.find((n) => n.host === 'node2')!.batch).toContain('link set veth-web-2 mtu 1450 up');
  });

  it('the router carries no pod-CIDR route, and the plan describes the tunnel for verify and the pictures', () => {
    expect(routes(ns(plan, 'router'))).toEqual([]);
    expect(plan.podNetwork.tunnel).toMatchObject({ kind: 'vxlan', vni: 1, port: 8472, overhead: 50 });
    expect(plan.podNetwork.drawn).toEqual([{ a: 'node1', b: 'node2', kind: 'tunnel', label: 'VXLAN VNI 1, UDP 8472' }]);
    expect(plan.podNetwork.tunnel!.vteps.map((v) => [v.node, v.mac, v.address, v.underlay])).toEqual([
      ['node1', '0e:fa:0a:f0:00:04', '10.244.0.0', '10.240.0.4'],
      ['node2', '0e:fa:0a:f0:00:05', '10.244.1.0', '10.240.0.5'],
    ]);
  });

  it('follows the nodes network MTU, and refuses one that leaves no room for the header', () => {
    const jumbo = planNetwork(loadTopology('nodeport', { 'podNetwork.mode': 'vxlan', 'networks.nodes.mtu': '9000' }).topology);
    expect(ns(jumbo, 'node1').batch).toContain('link set eth0 mtu 9000 up');
    expect(jumbo.podNetwork.podMtu).toBe(8950);
    const problems = problemsOf(() => loadTopology(join(FIXTURES, 'bad', 'vxlan-mtu-too-small.yaml')));
    expect(problems.map((p) => [p.field, p.line])).toEqual([['networks[0].mtu', 9]]);
    expect(problems[0]!.message).toMatch(/MTU 100 leaves 50 .* at least 118/);
  });

  it('a cut plan (lab scale, lab revive) starts no pod network daemon', () => {
    expect(planPods(t, ['web-2']).podNetwork.daemons).toEqual([]);
  });
});

describe('the cross-node hop each mode describes', () => {
  it.each([
    ['routed', /router, whose route for 10\.244\.1\.0\/24 leads to node2/, true],
    ['host-gw', /via 10\.240\.0\.5 dev eth0: straight to node2's MAC/, false],
    ['vxlan', /UDP 10\.240\.0\.4 → 10\.240\.0\.5:8472 \(VNI 1\)/, false],
  ] as const)('%s', (mode, summary, viaRouter) => {
    const t = load(mode);
    const hop = podNetworkOf(t).crossNodeHop(t, t.nodes[0]!, t.nodes[1]!);
    expect(hop.summary).toMatch(summary);
    expect(hop.viaRouter).toBe(viaRouter);
    expect(Boolean(hop.tunnel)).toBe(mode === 'vxlan');
  });

  it('the full plan carries the mode for every stage after it', () => {
    expect(planLab(load('vxlan')).podNetwork.mode).toBe('vxlan');
  });
});
