import { describe, expect, it } from 'vitest';
import { planNetwork, type NamespacePlan } from '../../lab/plan/network.js';
import { insideLab } from '../../lab/topology/relations.js';
import { planLab } from '../../lab/plan/plan.js';
import { loadTopology } from '../../lab/topology/load.js';
import { labMarker } from '../../lab/topology/names.js';
import type { Topology } from '../../lab/topology/schema.js';

const topology = loadTopology('nodeport').topology;
const plan = planNetwork(topology);
const byHost = (host: string): NamespacePlan => {
  const ns = plan.namespaces.find((n) => n.host === host);
  if (!ns) throw new Error(`no namespace for ${host}`);
  return ns;
};
const routes = (ns: NamespacePlan) => ns.batch.filter((l) => l.startsWith('route '));
const HOSTS = ['router', 'node1', 'node2', 'client', 'web-1', 'web-2'];

describe('planNetwork(nodeport): namespaces', () => {
  it('one namespace per host, named nodeport-<host>, with its role', () => {
    expect(plan.namespaces.map((n) => [n.ns, n.host, n.role])).toEqual([
      ['nodeport-router', 'router', 'router'],
      ['nodeport-node1', 'node1', 'node'],
      ['nodeport-node2', 'node2', 'node'],
      ['nodeport-client', 'client', 'client'],
      ['nodeport-web-1', 'web-1', 'pod'],
      ['nodeport-web-2', 'web-2', 'pod'],
    ]);
  });

  it('each namespace is marked as the lab\'s on lo, before anything else', () => {
    for (const n of plan.namespaces) {
      expect(n.batch[0]).toBe('link set lo alias kube-packet-lab:nodeport');
      expect(n.batch[0]).toBe(`link set lo alias ${labMarker('nodeport')}`);
      expect(n.batch[1]).toBe('link set lo up');
      expect(n.batch.filter((l) => l.includes('alias'))).toHaveLength(1);
    }
  });

  it('createBatch adds every namespace before a veth names it', () => {
    const added = new Set<string>();
    for (const line of plan.createBatch) {
      const m = /^netns add (\S+)$/.exec(line);
      if (m) {
        added.add(m[1]!);
        continue;
      }
      for (const ns of [...line.matchAll(/ netns (\S+)/g)].map((x) => x[1]!)) expect(added.has(ns), `${line}: ${ns} not added yet`).toBe(true);
    }
    expect([...added].sort()).toEqual(HOSTS.map((h) => `nodeport-${h}`).sort());
  });
});

describe('planNetwork(nodeport): links stay inside the lab', () => {
  const linkAdds = plan.createBatch.filter((l) => l.startsWith('link add'));
  const labNamespaces = new Set(plan.namespaces.map((n) => n.ns));

  it('every veth pair is born with both ends inside lab namespaces', () => {
    expect(linkAdds).toHaveLength(5); // node1, node2, client to the router; web-1, web-2 to their nodes
    for (const line of linkAdds) {
      const m = /^link add name (\S+) index (\d+) netns (\S+) type veth peer name (\S+) index (\d+) netns (\S+)$/.exec(line);
      expect(m, line).not.toBeNull();
      expect(labNamespaces.has(m![3]!), line).toBe(true);
      expect(labNamespaces.has(m![6]!), line).toBe(true);
      expect(m![3]).not.toBe(m![6]);
    }
  });

  it('never gives a veth the same index as its peer (the kernel would delay its carrier by up to 1 s)', () => {
    const indexes = new Map<string, Set<string>>();
    for (const line of linkAdds) {
      const m = /index (\d+) netns (\S+) type veth peer name \S+ index (\d+) netns (\S+)$/.exec(line)!;
      expect(m[1], line).not.toBe(m[3]);
      // and each index is unique inside its namespace
      for (const [idx, ns] of [[m[1]!, m[2]!], [m[3]!, m[4]!]] as const) {
        const used = indexes.get(ns) ?? new Set<string>();
        expect(used.has(idx), `${ns} index ${idx}`).toBe(false);
        used.add(idx);
        indexes.set(ns, used);
      }
    }
  });

  it('wires the documented topology', () => {
    expect(linkAdds).toEqual([
      'link add name eth0 index 100 netns nodeport-node1 type veth peer name p-node1 index 1000 netns nodeport-router',
      'link add name eth0 index 100 netns nodeport-node2 type veth peer name p-node2 index 1001 netns nodeport-router',
      'link add name eth0 index 100 netns nodeport-client type veth peer name p-client index 1002 netns nodeport-router',
      `link add name eth0 index 100 netns nodeport-web-1 type veth peer name veth-web-1 index ${0x1000000 + 0xf40003} netns nodeport-node1`,
      `link add name eth0 index 100 netns nodeport-web-2 type veth peer name veth-web-2 index ${0x1000000 + 0xf40102} netns nodeport-node2`,
    ]);
  });

  it('creates every bridge with a fixed MAC, so it does not change as ports come and go', () => {
    const bridges = plan.namespaces.flatMap((n) => n.batch.filter((l) => l.includes('type bridge') && l.startsWith('link add')));
    expect(bridges).toEqual([
      'link add br-nodes address 02:00:0a:f0:00:01 type bridge',
      'link add br-clients address 02:00:0a:f1:00:01 type bridge',
      'link add cbr0 address 02:00:0a:f4:00:01 type bridge',
      'link add cbr0 address 02:00:0a:f4:01:01 type bridge',
    ]);
  });

  it('the host-level batch does nothing but add namespaces and veth pairs', () => {
    for (const line of plan.createBatch) expect(line).toMatch(/^(netns add \S+|link add name \S+ index \d+ netns \S+ type veth peer name \S+ index \d+ netns \S+)$/);
  });

  it('per-namespace batches never move links or use another namespace', () => {
    for (const n of plan.namespaces) for (const line of n.batch) expect(line).not.toMatch(/\bnetns\b|^-n /);
  });
});

describe('planNetwork(nodeport): addresses and routes', () => {
  it('labPrefixes are the networks, the cluster pod range and the service range', () => {
    expect(plan.labPrefixes).toEqual(['10.240.0.0/24', '10.241.0.0/24', '10.244.0.0/16', '172.31.0.0/16']);
  });

  it('no default route anywhere, and every route lies inside the lab', () => {
    const all = plan.namespaces.flatMap((n) => routes(n).map((r) => [n.host, r] as const));
    expect(all.length).toBeGreaterThan(10);
    for (const [host, line] of all) {
      expect(line, host).not.toMatch(/default|0\.0\.0\.0/);
      const dest = /^route add (\S+) /.exec(line)?.[1];
      expect(dest, `${host}: ${line}`).toBeDefined();
      expect(insideLab(plan.labPrefixes, dest!), `${host}: ${line}`).toBe(true);
      for (const via of line.matchAll(/via (\S+)/g)) expect(insideLab(plan.labPrefixes, via[1]!), `${host}: ${line}`).toBe(true);
    }
  });

  it('insideLab itself tells inside from outside', () => {
    expect(insideLab(plan.labPrefixes, '10.244.1.0/24')).toBe(true);
    expect(insideLab(plan.labPrefixes, '172.31.0.5')).toBe(true);
    expect(insideLab(plan.labPrefixes, '10.244.0.0/15')).toBe(false); // wider than the pod range
    expect(insideLab(plan.labPrefixes, '0.0.0.0/0')).toBe(false);
    expect(insideLab(plan.labPrefixes, '10.242.0.0/24')).toBe(false);
    expect(insideLab(plan.labPrefixes, '8.8.8.8')).toBe(false);
    expect(insideLab(plan.labPrefixes, 'default')).toBe(false);
  });

  it('nodes: eth0 on the node subnet, the bridge on .1 of their pod CIDR, other lab prefixes via the router', () => {
    const n1 = byHost('node1');
    expect(n1.addresses).toEqual([
      { ifname: 'eth0', cidr: '10.240.0.4/24' },
      { ifname: 'cbr0', cidr: '10.244.0.1/24' },
    ]);
    expect(byHost('node2').addresses).toEqual([
      { ifname: 'eth0', cidr: '10.240.0.5/24' },
      { ifname: 'cbr0', cidr: '10.244.1.1/24' },
    ]);
    expect(n1.batch).toContain('link add cbr0 address 02:00:0a:f4:00:01 type bridge');
    expect(n1.batch).toContain('addr add 10.244.0.1/24 dev cbr0');
    expect(n1.batch.indexOf('link add cbr0 address 02:00:0a:f4:00:01 type bridge')).toBeLessThan(n1.batch.indexOf('addr add 10.244.0.1/24 dev cbr0'));
    expect(routes(n1)).toEqual(['route add 10.241.0.0/24 via 10.240.0.1', 'route add 10.244.0.0/16 via 10.240.0.1', 'route add 172.31.0.0/16 via 10.240.0.1']);
  });

  it('router: a bridge per network holding its address, ports enslaved, pod ranges routed to their nodes', () => {
    const r = byHost('router');
    expect(r.addresses).toEqual([
      { ifname: 'br-nodes', cidr: '10.240.0.1/24' },
      { ifname: 'br-clients', cidr: '10.241.0.1/24' },
    ]);
    for (const [port, bridge] of [['p-node1', 'br-nodes'], ['p-node2', 'br-nodes'], ['p-client', 'br-clients']]) {
      expect(r.batch).toContain(`link set ${port} master ${bridge}`);
      expect(r.batch).toContain(`link set ${port} up`);
    }
    expect(routes(r)).toEqual(['route add 10.244.0.0/24 via 10.240.0.4', 'route add 10.244.1.0/24 via 10.240.0.5']);
    // routes come after the bridges holding the next hops are up
    const lastUp = Math.max(r.batch.indexOf('link set br-nodes up'), r.batch.indexOf('link set br-clients up'));
    expect(lastUp).toBeGreaterThan(0);
    expect(r.batch.findIndex((l) => l.startsWith('route '))).toBeGreaterThan(lastUp);
  });

  it('client: reaches the node subnet, pods and services through the router', () => {
    const c = byHost('client');
    expect(c.addresses).toEqual([{ ifname: 'eth0', cidr: '10.241.0.4/24' }]);
    expect(routes(c)).toEqual(['route add 10.240.0.0/24 via 10.241.0.1', 'route add 10.244.0.0/16 via 10.241.0.1', 'route add 172.31.0.0/16 via 10.241.0.1']);
  });

  it('pods: eth0 in their node\'s pod CIDR, everything else through their cbr0', () => {
    expect(byHost('web-1').addresses).toEqual([{ ifname: 'eth0', cidr: '10.244.0.3/24' }]);
    expect(byHost('web-2').addresses).toEqual([{ ifname: 'eth0', cidr: '10.244.1.2/24' }]);
    expect(routes(byHost('web-2'))).toEqual([
      'route add 10.240.0.0/24 via 10.244.1.1',
      'route add 10.241.0.0/24 via 10.244.1.1',
      'route add 10.244.0.0/16 via 10.244.1.1',
      'route add 172.31.0.0/16 via 10.244.1.1',
    ]);
  });

  it('every address a namespace holds is added in its batch, and each interface is brought up', () => {
    for (const n of plan.namespaces) {
      for (const a of n.addresses) {
        expect(n.batch).toContain(`addr add ${a.cidr} dev ${a.ifname}`);
        expect(n.batch).toContain(`link set ${a.ifname} up`);
      }
    }
  });
});

describe('planNetwork(nodeport): sysctls and bridge ports', () => {
  it('nodes forward and pass bridged traffic through iptables', () => {
    for (const host of ['node1', 'node2']) {
      expect(byHost(host).sysctls).toEqual({ 'net.ipv4.ip_forward': '1', 'net.bridge.bridge-nf-call-iptables': '1' });
    }
  });

  it('the router forwards and sends no ICMP redirects, on all and on each bridge', () => {
    expect(byHost('router').sysctls).toEqual({
      'net.ipv4.ip_forward': '1',
      'net.ipv4.conf.all.send_redirects': '0',
      'net.ipv4.conf.br-nodes.send_redirects': '0',
      'net.ipv4.conf.br-clients.send_redirects': '0',
    });
  });

  it('clients and pods forward nothing', () => {
    for (const host of ['client', 'web-1', 'web-2']) expect(byHost(host).sysctls).toEqual({});
  });

  it('each pod\'s veth is a cbr0 port with hairpin on, on its own node only', () => {
    const n1 = byHost('node1');
    expect(n1.batch.slice(n1.batch.indexOf('link set veth-web-1 master cbr0'))).toEqual([
      'link set veth-web-1 master cbr0',
      'link set veth-web-1 type bridge_slave hairpin on',
      'link set veth-web-1 up',
    ]);
    expect(byHost('node2').batch).toContain('link set veth-web-2 type bridge_slave hairpin on');
    expect(n1.batch.join('\n')).not.toContain('veth-web-2');
    expect(byHost('node2').batch.join('\n')).not.toContain('veth-web-1');
  });
});

describe('planNetwork: variations', () => {
  const variant = (edit: (t: Topology) => void) => {
    const t = structuredClone(topology);
    edit(t);
    return planNetwork(t);
  };

  it('the lab name prefixes every namespace and the marker', () => {
    const p = variant((t) => {
      t.lab = 'np2';
    });
    expect(p.namespaces.map((n) => n.ns)).toEqual(HOSTS.map((h) => `np2-${h}`));
    expect(p.createBatch.every((l) => !l.includes('nodeport-'))).toBe(true);
    expect(p.namespaces.every((n) => n.batch[0] === 'link set lo alias kube-packet-lab:np2')).toBe(true);
  });

  it('a custom bridge name is used for the pod side', () => {
    const p = variant((t) => {
      t.nodes[0]!.bridge = 'br-pods';
    });
    const n1 = p.namespaces.find((n) => n.host === 'node1')!;
    expect(n1.batch).toContain('link add br-pods address 02:00:0a:f4:00:01 type bridge');
    expect(n1.batch).toContain('link set veth-web-1 master br-pods');
    expect(n1.addresses[1]).toEqual({ ifname: 'br-pods', cidr: '10.244.0.1/24' });
  });

  it('ECMP routes and hashPorts on the router', () => {
    const p = variant((t) => {
      t.routers[0]!.hashPorts = true;
      t.routers[0]!.routes.push({ to: '172.31.0.5', via: ['10.240.0.4', '10.240.0.5'] });
    });
    const r = p.namespaces.find((n) => n.host === 'router')!;
    expect(r.sysctls['net.ipv4.fib_multipath_hash_policy']).toBe('1');
    expect(routes(r).at(-1)).toBe('route add 172.31.0.5/32 nexthop via 10.240.0.4 nexthop via 10.240.0.5');
  });

  it('planLab: a workload for each selected pod, on its targetPorts', () => {
    const p = planLab(topology);
    expect(p.lab).toBe('nodeport');
    expect(p.workloads).toHaveLength(2);
    expect(p.workloads).toMatchObject([
      { pod: 'web-1', node: 'node1', ns: 'nodeport-web-1', ip: '10.244.0.3', ports: [8443] },
      { pod: 'web-2', node: 'node2', ns: 'nodeport-web-2', ip: '10.244.1.2', ports: [8443] },
    ]);
    expect(p.createBatch).toEqual(plan.createBatch);
  });
});

describe('planNetwork(nodeport-multihomed): a node with a second interface', () => {
  const mh = planNetwork(loadTopology('nodeport-multihomed').topology);
  const node1 = mh.namespaces.find((n) => n.host === 'node1')!;
  it("eth1 is a veth to the router's port p1-node1 on br-clients, with its own index", () => {
    expect(mh.createBatch).toContain('link add name eth1 index 101 netns nodeport-multihomed-node1 type veth peer name p1-node1 index 1001 netns nodeport-multihomed-router');
    const router = mh.namespaces.find((n) => n.host === 'router')!;
    expect(router.batch).toEqual(expect.arrayContaining(['link set p1-node1 master br-clients', 'link set p1-node1 up']));
    expect(node1.addresses).toEqual(expect.arrayContaining([{ ifname: 'eth1', cidr: '10.241.0.20/24' }]));
  });
  it('the client network is connected on eth1: no route to it through the router, so replies leave by eth1', () => {
    expect(routes(node1)).toEqual(['route add 10.244.0.0/16 via 10.240.0.1', 'route add 172.31.0.0/16 via 10.240.0.1']);
    // node2, on the nodes network only, still reaches the clients through the router.
    expect(routes(mh.namespaces.find((n) => n.host === 'node2')!)).toContain('route add 10.241.0.0/24 via 10.240.0.1');
  });
});
