import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type InputProblem } from '../../lab/errors.js';
import { clusterDnsRecords, netnsEtcDir, podResolvConf, RESOLV_CONF_HEADER } from '../../lab/plan/dns.js';
import { servicePorts } from '../../lab/plan/endpoints.js';
import { endpointChain, serviceChain } from '../../lab/plan/kube-proxy/hash.js';
import { initialRestore, kubeProxyRules } from '../../lab/plan/kube-proxy/iptables.js';
import { parseSave, type ParsedRule } from '../../lab/plan/kube-proxy/rules.js';
import { planLab } from '../../lab/plan/plan.js';
import { loadTopology } from '../../lab/topology/load.js';
import { loadWalkthrough } from '../../lab/verify/walkthrough.js';
import { problemsOf } from './helpers.js';

const clusterip = loadTopology('clusterip');
const loadbalancer = loadTopology('loadbalancer');

/** The problems a --set override makes the topology report; one that loads fails the test. */
function refused(ref: string, overrides: Record<string, string>): InputProblem[] {
  const problems = problemsOf(() => loadTopology(ref, overrides));
  expect(problems, `${ref} with ${JSON.stringify(overrides)} should be refused`).not.toEqual([]);
  return problems;
}

const natRules = (node: string, t = clusterip.topology) => parseSave(initialRestore(kubeProxyRules(t, node))).rules.filter((r) => r.table === 'nat');
const byComment = (rules: ParsedRule[], chain: string, comment: string) => rules.filter((r) => r.chain === chain && r.options.get('--comment') === comment);

describe('UDP service ports (kube-dns)', () => {
  it('hash with lower-case "udp", giving the chain names every cluster shows for kube-dns', () => {
    // Computed independently: base32(sha256("kube-system/kube-dns:dns" + "udp"))[:16].
    expect(serviceChain('kube-system/kube-dns:dns', 'udp')).toBe('KUBE-SVC-TCOU7JCQXEZGVUNU');
    expect(serviceChain('kube-system/kube-dns:dns-tcp', 'tcp')).toBe('KUBE-SVC-ERIFXISQEP7F7OF4');
    expect(endpointChain('kube-system/kube-dns:dns', 'udp', '10.244.1.10:53')).toBe('KUBE-SEP-QZ2RMBQRVUNY2HKV');
  });

  it('carry their protocol into the service port view', () => {
    const views = servicePorts(clusterip.topology).map((v) => [v.name, v.protocol, v.endpoints.map((e) => e.address)]);
    expect(views).toEqual([
      ['default/web:https', 'tcp', ['10.244.0.3:8443', '10.244.1.2:8443']],
      ['kube-system/kube-dns:dns', 'udp', ['10.244.1.10:53']],
      ['kube-system/kube-dns:dns-tcp', 'tcp', ['10.244.1.10:53']],
    ]);
  });

  it('match "-m udp -p udp" in the cluster-IP, masquerade and DNAT rules', () => {
    const rules = natRules('node1');
    const [entry] = byComment(rules, 'KUBE-SERVICES', 'kube-system/kube-dns:dns cluster IP');
    expect(entry?.modules).toEqual(['comment', 'udp']);
    expect(Object.fromEntries(entry!.options)).toMatchObject({ '-d': '172.31.0.10', '-p': 'udp', '--dport': '53', '-j': 'KUBE-SVC-TCOU7JCQXEZGVUNU' });

    const svc = rules.filter((r) => r.chain === 'KUBE-SVC-TCOU7JCQXEZGVUNU');
    expect(svc.map((r) => r.options.get('-j'))).toEqual(['KUBE-MARK-MASQ', 'KUBE-SEP-QZ2RMBQRVUNY2HKV']);
    expect(svc[0]!.options.get('-p')).toBe('udp');

    const dnat = rules.find((r) => r.chain === 'KUBE-SEP-QZ2RMBQRVUNY2HKV' && r.options.get('-j') === 'DNAT')!;
    expect(dnat.modules).toContain('udp');
    expect(dnat.options.get('-p')).toBe('udp');
    expect(dnat.options.get('--to-destination')).toBe('10.244.1.10:53');
  });

  it('keep TCP on the same port number apart, in its own chains', () => {
    const rules = natRules('node2');
    const [tcpEntry] = byComment(rules, 'KUBE-SERVICES', 'kube-system/kube-dns:dns-tcp cluster IP');
    expect(tcpEntry?.options.get('-p')).toBe('tcp');
    expect(tcpEntry?.options.get('-j')).toBe('KUBE-SVC-ERIFXISQEP7F7OF4');
    expect(rules.filter((r) => r.options.get('--to-destination') === '10.244.1.10:53').map((r) => r.options.get('-p')).sort()).toEqual(['tcp', 'udp']);
  });

  it('with no endpoints, reject UDP in the filter table with a UDP match', () => {
    const t = structuredClone(clusterip.topology);
    t.pods.find((p) => p.name === 'coredns')!.ready = false;
    const filter = parseSave(initialRestore(kubeProxyRules(t, 'node1'))).rules.filter((r) => r.table === 'filter' && r.chain === 'KUBE-SERVICES');
    const reject = filter.find((r) => r.options.get('--comment') === 'kube-system/kube-dns:dns has no endpoints')!;
    expect(reject.options.get('-p')).toBe('udp');
    expect(reject.options.get('-j')).toBe('REJECT');
  });

  it('may share a nodePort number with a TCP port (node ports are per protocol)', () => {
    expect(refused('clusterip', { 'services.kube-dns.type': 'NodePort', 'services.kube-dns.ports.dns.nodePort': '30053' }).map((p) => p.field)).toEqual([
      'services[1].ports[1].nodePort',
    ]);
    const ok = loadTopology('clusterip', { 'services.kube-dns.type': 'NodePort', 'services.kube-dns.ports.dns.nodePort': '30053', 'services.kube-dns.ports.dns-tcp.nodePort': '30053' });
    expect(ok.topology.services[1]!.ports.map((p) => `${p.nodePort}/${p.protocol}`)).toEqual(['30053/UDP', '30053/TCP']);
  });

  it('refuse a protocol other than TCP, UDP and SCTP', () => {
    expect(refused('clusterip', { 'services.web.ports.https.protocol': 'ICMP' }).map((p) => p.field)).toEqual(['services[0].ports[0].protocol']);
  });
});

describe('cluster DNS in the plan', () => {
  const plan = planLab(clusterip.topology);

  it('names every service <name>.<namespace>.svc.<domain>', () => {
    expect(clusterDnsRecords(clusterip.topology)).toEqual({
      'web.default.svc.cluster.local': '172.31.0.5',
      'kube-dns.kube-system.svc.cluster.local': '172.31.0.10',
    });
  });

  it('writes the resolv.conf kubelet gives a ClusterFirst pod', () => {
    expect(podResolvConf('172.31.0.10', 'cluster.local')).toBe(
      `${RESOLV_CONF_HEADER}\nnameserver 172.31.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n`,
    );
    expect(podResolvConf('10.96.0.10', 'example.org.', 'shop')).toContain('search shop.svc.example.org svc.example.org example.org\n');
  });

  it('plans one resolv.conf per pod namespace, in /etc/netns/<ns>/ where ip netns exec finds it', () => {
    expect(plan.files.map((f) => f.path)).toEqual(['frontend', 'web-1', 'web-2', 'coredns'].map((p) => `${netnsEtcDir(`clusterip-${p}`)}/resolv.conf`));
    expect(plan.files.every((f) => f.path === `${f.dir}/resolv.conf` && f.content.includes('\nnameserver 172.31.0.10\n'))).toBe(true);
    expect(netnsEtcDir('clusterip-web-1')).toMatch(/\/clusterip-web-1$/);
  });

  it('plans no files without cluster.dns (the nodeport world)', () => {
    expect(planLab(loadTopology('nodeport').topology).files).toEqual([]);
  });

  it('runs the DNS server in the coredns pod with the zone, the HTTP server elsewhere, nothing in the frontend', () => {
    expect(plan.workloads.map((w) => [w.pod, w.kind, w.ports])).toEqual([
      ['web-1', 'http', [8443]],
      ['web-2', 'http', [8443]],
      ['coredns', 'dns', [53]],
    ]);
    const dns = plan.workloads.find((w) => w.kind === 'dns')!;
    expect(dns.zone).toEqual({ domain: 'cluster.local', records: { 'web.default.svc.cluster.local': '172.31.0.5', 'kube-dns.kube-system.svc.cluster.local': '172.31.0.10' } });
    expect(plan.workloads.filter((w) => w.kind === 'http').every((w) => w.zone === undefined)).toBe(true);
  });

  it('checks that cluster.dns is a service IP served by a dns pod', () => {
    expect(refused('clusterip', { 'cluster.dns': '172.31.0.99' }).map((p) => [p.field, p.message])).toEqual([
      ['cluster.dns', '172.31.0.99 is not the clusterIP of any service (it should be the cluster DNS service, like kube-dns)'],
    ]);
    expect(refused('clusterip', { 'cluster.dns': '172.31.0.5' }).map((p) => p.field)).toEqual(['cluster.dns']);
    expect(refused('clusterip', { 'pods.coredns.workload': 'http' }).map((p) => p.field)).toEqual(['cluster.dns']);
    expect(refused('clusterip', { 'pods.frontend.workload': 'dns' }).map((p) => [p.field, p.message])).toEqual([
      ['pods[0].workload', 'a dns pod needs a service that selects it (its targetPorts are where it listens)'],
    ]);
    expect(refused('clusterip', { 'pods.web-1.workload': 'ftp' }).map((p) => p.field)).toEqual(['pods[1].workload']);
  });
});

describe('topologies/loadbalancer.yaml', () => {
  const t = loadbalancer.topology;

  it('routes the LB IP over both nodes, hashing ports, and holds it on no interface', () => {
    const router = planLab(t).namespaces.find((n) => n.host === 'router')!;
    expect(router.batch).toContain('route add 10.240.0.100/32 nexthop via 10.240.0.4 nexthop via 10.240.0.5');
    expect(router.sysctls['net.ipv4.fib_multipath_hash_policy']).toBe('1');
    const held = planLab(t).namespaces.flatMap((n) => n.addresses.map((a) => a.cidr.split('/')[0]));
    expect(held).not.toContain('10.240.0.100');
  });

  it('gives both nodes the "loadbalancer IP" rule into KUBE-EXT', () => {
    for (const node of ['node1', 'node2']) {
      const [lb] = byComment(natRules(node, t), 'KUBE-SERVICES', 'default/web:https loadbalancer IP');
      expect(Object.fromEntries(lb!.options)).toMatchObject({ '-d': '10.240.0.100', '-p': 'tcp', '--dport': '443', '-j': 'KUBE-EXT-54WW65JLHZHRV7HC' });
    }
  });
});

describe('walkthroughs', () => {
  it('clusterip: the documented paths, traffic groups and observation points', () => {
    const { walkthrough: w } = loadWalkthrough(clusterip.topology, clusterip.path);
    expect(w.paths.map((p) => [p.name, p.endpoint, (p.traffic ?? w.traffic).from, (p.traffic ?? w.traffic).to])).toEqual([
      ['cross-node', 'web-2', 'frontend', '172.31.0.5:443'],
      ['same-node', 'web-1', 'frontend', '172.31.0.5:443'],
      ['by-name', 'web-2', 'frontend', 'web.default.svc.cluster.local:443'],
      ['distribution', 'web-1', 'frontend', '172.31.0.5:443'],
      ['hairpin', 'web-1', 'web-1', '172.31.0.5:443'],
    ]);
    expect(w.paths.find((p) => p.name === 'distribution')!.traffic).toMatchObject({ requests: 200, maxRequests: 200 });
    expect(w.observe).toContain('node1:veth-frontend');
  });

  it('loadbalancer: four paths, one per entry node and endpoint', () => {
    const { walkthrough: w } = loadWalkthrough(loadbalancer.topology, loadbalancer.path);
    expect(w.paths.map((p) => [p.name, p.via, p.endpoint])).toEqual([
      ['node1-cross-node', 'node1', 'web-2'],
      ['node1-same-node', 'node1', 'web-1'],
      ['node2-same-node', 'node2', 'web-2'],
      ['node2-cross-node', 'node2', 'web-1'],
    ]);
  });

  it('rejects a path `via` a host that is not a node', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kpl-walkthrough-'));
    const topo = join(dir, 'lb.yaml');
    writeFileSync(topo, '');
    writeFileSync(
      join(dir, 'lb.walkthrough.yaml'),
      ['title: t', 'traffic: { from: client, to: "10.240.0.100:443" }', 'observe: [client:eth0]', 'paths:', '  - { name: p, via: router, endpoint: web-1, steps: [{ step: "1", title: t, skip: x }] }', ''].join('\n'),
    );
    const problems = problemsOf(() => loadWalkthrough({ ...loadbalancer.topology, walkthrough: 'lb.walkthrough.yaml' }, topo));
    expect(problems.map((p) => [p.field, p.message])).toEqual([['paths[0].via', '"router" is not a node of this topology']]);
  });
});
