import { describe, expect, it } from 'vitest';
import { afterProbe, expectedNextHops, nextHopsOf, healthCheckBody, healthCheckServers, loadBalancerChecks, LB_HEALTH_CHECK } from '../../lab/plan/kube-proxy/health.js';
import { kubeProxyRules } from '../../lab/plan/kube-proxy/iptables.js';
import { planLab } from '../../lab/plan/plan.js';
import { loadTopology } from '../../lab/topology/load.js';
import type { Topology } from '../../lab/topology/schema.js';
import type { TcpPacket } from '../../lab/capture/pcap.js';
import type { Evidence } from '../../lab/verify/evidence.js';
import { groupJudges } from '../../lab/verify/judges.js';
import { loadWalkthrough } from '../../lab/verify/walkthrough.js';

/** The health check node port of a Local LoadBalancer, as data: the servers' counts, the load balancer's checks, the body. */

const withReady = (t: Topology, ready: Record<string, boolean>): Topology => ({ ...t, pods: t.pods.map((p) => (p.name in ready ? { ...p, ready: ready[p.name]! } : p)) });

describe('loadbalancer-local', () => {
  const { topology: t, path } = loadTopology('loadbalancer-local');

  it('loads with both walkthroughs', () => {
    expect(loadWalkthrough(t, path).walkthrough.paths.map((p) => p.name)).toEqual(['via-node1', 'via-node2']);
    expect(loadWalkthrough({ ...t, walkthrough: 'loadbalancer-local-unready.walkthrough.yaml' }, path).walkthrough.traffic.requests).toBe(12);
  });

  it("counts each node's ready local endpoints, as kube-proxy's LocalReadyEndpoints does", () => {
    expect(healthCheckServers(t)).toEqual([
      { node: 'node1', ns: 'loadbalancer-local-node1', address: '0.0.0.0', port: 32100, namespace: 'default', name: 'web', localEndpoints: 1 },
      { node: 'node2', ns: 'loadbalancer-local-node2', address: '0.0.0.0', port: 32100, namespace: 'default', name: 'web', localEndpoints: 1 },
    ]);
    const unready = loadTopology('loadbalancer-local', { 'pods.web-2.ready': 'false' }).topology;
    expect(healthCheckServers(unready).map((s) => s.localEndpoints)).toEqual([1, 0]);
  });

  it('listens where kube-proxy does: every address in iptables mode, the node IP in nftables mode (--nodeport-addresses primary)', () => {
    const nft = loadTopology('loadbalancer-local', { 'kubeProxy.mode': 'nftables' }).topology;
    expect(healthCheckServers(nft).map((s) => s.address)).toEqual(['10.240.0.4', '10.240.0.5']);
  });

  it('counts distinct pod IPs: a second ready pod on node1 makes 2, an unready one nothing', () => {
    const extra = { ...t.pods[0]!, name: 'web-3', address: '10.244.0.4' };
    const more = { ...t, pods: [...t.pods, extra, { ...extra, name: 'web-4', address: '10.244.0.5', ready: false }] };
    expect(healthCheckServers(more).map((s) => [s.node, s.localEndpoints])).toEqual([['node1', 2], ['node2', 1]]);
  });

  it('checks the ECMP route to the LB IP on the health check node port, from the router', () => {
    expect(loadBalancerChecks(t)).toEqual([{ router: 'router', ns: 'loadbalancer-local-router', to: '10.240.0.100/32', port: 32100, nodes: ['10.240.0.4', '10.240.0.5'], ...LB_HEALTH_CHECK }]);
    expect(planLab(t).healthChecks).toBe(true);
  });

  it('settles on the nodes with a ready local endpoint, and on every node when none has one (fail open)', () => {
    const [check] = loadBalancerChecks(t);
    expect(expectedNextHops(t, check!)).toEqual(['10.240.0.4', '10.240.0.5']);
    expect(expectedNextHops(withReady(t, { 'web-2': false }), check!)).toEqual(['10.240.0.4']);
    expect(expectedNextHops(withReady(t, { 'web-1': false }), check!)).toEqual(['10.240.0.5']);
    expect(expectedNextHops(withReady(t, { 'web-1': false, 'web-2': false }), check!)).toEqual(['10.240.0.4', '10.240.0.5']);
  });

  it('accepts the health check node port in the filter table (iptables mode)', () => {
    const accept = kubeProxyRules(t, 'node1').filter.rules.filter((r) => r.chain === 'KUBE-NODEPORTS');
    expect(accept.map((r) => r.args.join(' '))).toEqual(['-m comment --comment "default/web:https health check node port" -m tcp -p tcp --dport 32100 -j ACCEPT'.replace(/"/g, '')]);
  });

  it("writes the ACCEPT once per service port, as upstream's proxier does, with or without endpoints; nftables writes none", async () => {
    const { nftablesRules, renderNftAdds } = await import('../../lab/plan/kube-proxy/nftables.js');
    const web = t.services[0]!;
    const two = { ...t, services: [{ ...web, ports: [web.ports[0]!, { ...web.ports[0]!, name: 'http', port: 80, nodePort: 32001 }] }] };
    const accepts = (topo: Topology) => kubeProxyRules(topo, 'node1').filter.rules.filter((r) => r.chain === 'KUBE-NODEPORTS').map((r) => r.args.join(' '));
    expect(accepts(two)).toEqual(['https', 'http'].map((n) => `-m comment --comment default/web:${n} health check node port -m tcp -p tcp --dport 32100 -j ACCEPT`));
    // No endpoint anywhere: the ports are rejected, and the health check node port still accepted.
    expect(accepts(withReady(two, { 'web-1': false, 'web-2': false }))).toHaveLength(2);
    const nft = renderNftAdds(nftablesRules({ ...two, kubeProxy: { ...two.kubeProxy, mode: 'nftables' } }, 'node1')).join('\n');
    expect(nft).not.toContain('32100');
  });
});

describe("the load balancer's view of a node", () => {
  const probes = (results: boolean[]) => {
    let state = { healthy: undefined as boolean | undefined, streak: 0 };
    return results.map((passed) => (state = afterProbe(state, passed, LB_HEALTH_CHECK)).healthy);
  };

  it('takes the first probe as it comes, then needs 2 failures in a row to take a node out and 1 pass to put it back', () => {
    expect(probes([false])).toEqual([false]);
    expect(probes([true, false, true, false, false, true])).toEqual([true, true, true, true, false, true]);
  });

  it('keeps the healthy nodes as next hops, and every node when none is healthy (fail open)', () => {
    const nodes = ['10.240.0.4', '10.240.0.5'];
    expect(nextHopsOf(nodes, (n) => n === '10.240.0.4')).toEqual(['10.240.0.4']);
    expect(nextHopsOf(nodes, () => false)).toEqual(nodes);
    expect(nextHopsOf(nodes, () => undefined)).toEqual(nodes);
  });
});

describe('the httpResponse check (the load balancer\'s probes on the wire)', () => {
  const response = (src: string, status: string, body = ''): TcpPacket => ({
    time: 1, src, sport: 32100, dst: '10.240.0.1', dport: 40000, flags: 'P.', seq: 1, ack: 1, payloadLength: 200,
    payload: `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\n\r\n${body}`,
  });
  const ctx = (packets: TcpPacket[]) => ({ at: 'node2:eth0', groupFlows: [], evidence: { packets: { 'node2:eth0': packets } } as unknown as Evidence });
  const want = { src: '10.240.0.5:32100', dst: '10.240.0.1', status: 503 };

  it('passes on a captured response with that status, and shows its status line and count', () => {
    const v = groupJudges.httpResponse(want, ctx([response('10.240.0.5', '503 Service Unavailable', healthCheckBody('default', 'web', 0))]));
    expect(v.ok).toBe(true);
    expect(v.seen).toBe('10.240.0.5:32100 > 10.240.0.1:40000 [P.] len 200: HTTP/1.1 503 Service Unavailable, "localEndpoints": 0 (1 such responses)');
  });

  it('fails on another status, on another sender, and on no response at all', () => {
    expect(groupJudges.httpResponse(want, ctx([response('10.240.0.5', '200 OK')])).seen).toMatch(/^other statuses: .*HTTP\/1\.1 200 OK/);
    expect(groupJudges.httpResponse(want, ctx([response('10.240.0.4', '503 Service Unavailable')])).ok).toBe(false);
    expect(groupJudges.httpResponse(want, ctx([])).seen).toBe('no such HTTP response captured here');
  });
});

describe("kube-proxy's health check answer", () => {
  it('is the tab-indented JSON of service_health.go, without a final newline', () => {
    const body = healthCheckBody('default', 'web', 0);
    expect(body).toBe('{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "web"\n\t},\n\t"localEndpoints": 0,\n\t"serviceProxyHealthy": true\n}');
    expect(JSON.parse(body)).toEqual({ service: { namespace: 'default', name: 'web' }, localEndpoints: 0, serviceProxyHealthy: true });
  });
});

describe('scenarios without a health check node port', () => {
  it('plan no health check servers and no load balancer checks', () => {
    const t = loadTopology('loadbalancer').topology;
    expect(healthCheckServers(t)).toEqual([]);
    expect(loadBalancerChecks(t)).toEqual([]);
    expect(planLab(t).healthChecks).toBe(false);
  });
});
