import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kubeProxyRules, resyncRestore } from '../../lab/plan/kube-proxy/iptables.js';
import { nftablesRules, renderNftAdds } from '../../lab/plan/kube-proxy/nftables.js';
import { endpointsOf, targetPortOf } from '../../lab/plan/endpoints.js';
import { planLab } from '../../lab/plan/plan.js';
import { loadTopology } from '../../lab/topology/load.js';
import { deriveWalkthrough } from '../../lab/verify/derive/index.js';
import { problemsOf } from './helpers.js';

/**
 * Named target ports, resolved per pod as the EndpointSlice controller's FindPort does (by name
 * and protocol; a pod without the name is no endpoint of that Service port), and the rules both
 * proxiers write for what it resolved to (test/fixtures/worlds/named-ports.yaml).
 */
const FILE = join(import.meta.dirname, '..', 'fixtures', 'worlds', 'named-ports.yaml');
const world = (set: Record<string, string> = {}) => loadTopology(FILE, set).topology;
const fields = (set: Record<string, string>) => problemsOf(() => loadTopology(FILE, set)).map((p) => `${p.field}: ${p.message}`);

describe('named target ports', () => {
  it('FindPort: a number as it is; a name by name and protocol; none without it', () => {
    const pod = { ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' as const }, { name: 'dns', containerPort: 5353, protocol: 'UDP' as const }] };
    expect(targetPortOf(pod, { targetPort: 81, protocol: 'TCP' })).toBe(81);
    expect(targetPortOf({}, { targetPort: 81, protocol: 'TCP' })).toBe(81);
    expect(targetPortOf(pod, { targetPort: 'http', protocol: 'TCP' })).toBe(8080);
    expect(targetPortOf(pod, { targetPort: 'http', protocol: 'UDP' })).toBeUndefined();
    expect(targetPortOf(pod, { targetPort: 'dns', protocol: 'UDP' })).toBe(5353);
    expect(targetPortOf({}, { targetPort: 'http', protocol: 'TCP' })).toBeUndefined();
  });

  it('each pod is an endpoint on its own number; the pod without the name is none of that port', () => {
    const t = world();
    const [http, metrics] = t.services[0]!.ports;
    expect(endpointsOf(t, t.services[0]!, http!).map((e) => `${e.pod} ${e.address}`)).toEqual(['web-1 10.244.0.3:8080', 'web-2 10.244.1.2:9090']);
    expect(endpointsOf(t, t.services[0]!, metrics!).map((e) => e.address)).toEqual(['10.244.0.3:9100', '10.244.1.2:9100', '10.244.1.3:9100']);
    // The workloads listen where the Service reaches them.
    const ports = Object.fromEntries(planLab(t).workloads.map((w) => [w.pod, w.ports]));
    expect(ports).toEqual({ 'web-1': [8080, 9100], 'web-2': [9090, 9100], 'web-3': [9100] });
  });

  it('iptables: one SEP per pod, each DNATing to its own number', () => {
    const rules = resyncRestore(kubeProxyRules(world(), 'node1')).split('\n');
    const dnat = (name: string) => rules.filter((l) => l.includes(`--comment default/web:${name} -m tcp -p tcp -j DNAT`)).map((l) => l.split(' ').at(-1)).sort();
    expect(dnat('http')).toEqual(['10.244.0.3:8080', '10.244.1.2:9090']);
    expect(dnat('metrics')).toEqual(['10.244.0.3:9100', '10.244.1.2:9100', '10.244.1.3:9100']);
    expect(rules.filter((l) => /^-A KUBE-SVC-\S+ .*default\/web:http ->/.test(l)).map((l) => /-> (\S+)"/.exec(l)![1])).toEqual(['10.244.0.3:8080', '10.244.1.2:9090']);
  });

  it('nftables: the endpoint chains name and DNAT to each pod\'s number', () => {
    const lines = renderNftAdds(nftablesRules(world({ 'kubeProxy.mode': 'nftables' }), 'node1'));
    const dnat = lines.filter((l) => /endpoint-\S+-default\/web\/tcp\/http__/.test(l) && l.includes('dnat to')).map((l) => /dnat to (\S+)/.exec(l)![1]).sort();
    expect(dnat).toEqual(['10.244.0.3:8080', '10.244.1.2:9090']);
  });

  it('the derived walkthrough expects only the pods that have the name, on their numbers', () => {
    const paths = deriveWalkthrough(world()).walkthrough.paths;
    const http = paths.filter((p) => p.traffic!.to.endsWith(':80') || p.traffic!.to.endsWith(':30080'));
    expect(http.length).toBeGreaterThan(0);
    const text = JSON.stringify(http);
    expect(text).toContain('10.244.0.3:8080');
    expect(text).toContain('10.244.1.2:9090');
    // web-3 answers none of it: no path ends at it, and the ones that name it expect no share.
    expect(http.map((p) => p.endpoint).filter((e) => e === 'web-3')).toEqual([]);
    const shares = http.flatMap((p) => p.steps.filter((s) => s.expect?.share?.endpoints.includes('web-3')).map((s) => s.expect?.share!.max));
    expect(shares.length).toBeGreaterThan(0);
    expect(new Set(shares)).toEqual(new Set([0]));
  });

  it('refuses a name no selected pod declares, a name used twice in a pod, a name the API would not take', () => {
    expect(fields({ 'services.web.ports': '[{name: http, port: 80, targetPort: htp, nodePort: 30080}]' })).toEqual([
      expect.stringMatching(/^services\[0\]\.ports\[0\]\.targetPort: no pod that service default\/web selects has a TCP port named "htp"/),
    ]);
    // The protocol is part of the match.
    expect(fields({ 'services.web.ports': '[{name: http, protocol: UDP, port: 80, targetPort: http, nodePort: 30080}]' })).toEqual([expect.stringMatching(/has a UDP port named "http"/)]);
    expect(fields({ 'pods.web-1.ports': '[{name: http, containerPort: 8080}, {name: http, containerPort: 8081}]' })).toEqual([expect.stringMatching(/^pods\[0\]\.ports\[1\]\.name: port name "http" is used twice/)]);
    for (const bad of ['HTTP', 'a--b', '8080x-', '1234', 'a-very-long-port-name']) {
      expect(fields({ 'pods.web-1.ports': `[{name: "${bad}", containerPort: 8080}]` }).some((f) => f.startsWith('pods[0].ports[0].name:')), bad).toBe(true);
    }
  });
});

describe('what the pictures and lab endpoints show', () => {
  it("the Service box lists each port's endpoints on their resolved numbers, hand-written slices' too", async () => {
    const { topologyGraph } = await import('../../lab/picture/graph.js');
    expect(topologyGraph(world()).services[0]!.lines).toEqual(
      expect.arrayContaining(['http endpoints: web-1 10.244.0.3:8080, web-2 10.244.1.2:9090', 'metrics endpoints: web-1 10.244.0.3:9100, web-2 10.244.1.2:9100, web-3 10.244.1.3:9100']),
    );
    const sliced = loadTopology(join(import.meta.dirname, '..', 'fixtures', 'upstream-worlds', 'node-ports.yaml')).topology;
    expect(topologyGraph(sliced).services[0]!.lines).toContain('endpoints: ep-1 10.180.0.1:80');
    const { endpointsView } = await import('../../lab/plan/scale.js');
    const { endpointRows } = await import('../../lab/cli/endpoint-rows.js');
    const rows = endpointRows(endpointsView(sliced)[0]!);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatch(/10\.180\.0\.1:80\s+ep-1\s+\(no node\) ready=true serving=true terminating=false slice=svc1-1/);
  });
});
