import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { applyDiff } from '../../lab/plan/apply-diff.js';
import { kubeProxyRules, resyncRestore } from '../../lab/plan/kube-proxy/iptables.js';
import { nftablesRules, renderNftAdds } from '../../lab/plan/kube-proxy/nftables.js';
import { planLab } from '../../lab/plan/plan.js';
import { loadTopology } from '../../lab/topology/load.js';
import { outsideServiceIPs, serviceIPRoutes } from '../../lab/topology/relations.js';
import { deriveWalkthrough } from '../../lab/verify/derive/index.js';
import { loadWalkthrough } from '../../lab/verify/walkthrough.js';
import { problemsOf } from './helpers.js';

/**
 * Service IPs outside the lab's networks (test/fixtures/worlds/outside-ips.yaml: 1.2.3.4 and
 * 5.6.7.8, as upstream's tests use) and senders with extra addresses (traffic.source).
 */
const FILE = join(import.meta.dirname, '..', 'fixtures', 'worlds', 'outside-ips.yaml');
const world = (set: Record<string, string> = {}) => loadTopology(FILE, set).topology;
const fields = (set: Record<string, string>) => problemsOf(() => loadTopology(FILE, set)).map((p) => `${p.field}: ${p.message}`);
const batchOf = (t: ReturnType<typeof world>, host: string) => planLab(t).namespaces.find((n) => n.host === host)!.batch;

describe('load balancer and external IPs outside the lab', () => {
  it('every host routes them toward its router; the router over every node (ECMP)', () => {
    const t = world();
    expect(outsideServiceIPs(t)).toEqual(['1.2.3.4', '5.6.7.8']);
    expect(batchOf(t, 'client')).toEqual(expect.arrayContaining(['route add 1.2.3.4/32 via 10.241.0.1', 'route add 5.6.7.8/32 via 10.241.0.1']));
    expect(batchOf(t, 'node2')).toContain('route add 1.2.3.4/32 via 10.240.0.1');
    expect(batchOf(t, 'router')).toEqual(expect.arrayContaining(['route add 1.2.3.4/32 nexthop via 10.240.0.4 nexthop via 10.240.0.5', 'route add 5.6.7.8/32 nexthop via 10.240.0.4 nexthop via 10.240.0.5']));
  });

  it("a route the file writes wins; MetalLB's BGP mode announces the LoadBalancer IP instead", () => {
    const own = world({ 'routers.router.routes': '[{to: 10.244.0.0/24, via: 10.240.0.4}, {to: 10.244.1.0/24, via: 10.240.0.5}, {to: 1.2.3.4, via: 10.240.0.5}]' });
    expect(serviceIPRoutes(own).map((r) => r.to)).toEqual(['5.6.7.8/32']);
    expect(batchOf(own, 'router')).toContain('route add 1.2.3.4/32 via 10.240.0.5');
    const bgp = batchOf(world({ 'loadBalancer.mode': 'bgp' }), 'router');
    expect(bgp.some((l) => l.startsWith('route add 1.2.3.4/32'))).toBe(false);
    expect(bgp.some((l) => l.startsWith('route add 5.6.7.8/32'))).toBe(true);
  });

  it("kube-proxy's rules for them as for any other, in both modes", () => {
    const ipt = resyncRestore(kubeProxyRules(world(), 'node1'));
    expect(ipt).toMatch(/-A KUBE-SERVICES -m comment --comment "default\/lb:http loadbalancer IP" -m tcp -p tcp -d 1\.2\.3\.4 --dport 80 -j KUBE-FW-/);
    expect(ipt).toMatch(/-A KUBE-SERVICES -m comment --comment "default\/ext:http external IP" -m tcp -p tcp -d 5\.6\.7\.8 --dport 80 -j KUBE-EXT-/);
    const nft = renderNftAdds(nftablesRules(world({ 'kubeProxy.mode': 'nftables' }), 'node1')).join('\n');
    expect(nft).toMatch(/service-ips \{ 1\.2\.3\.4 \. tcp \. 80 : goto external-/);
    expect(nft).toMatch(/firewall-ips \{ 1\.2\.3\.4 \. tcp \. 80 : goto firewall-/);
  });

  it('refuses a reserved address at its line; refuses lab apply of a new outside IP', () => {
    for (const ip of ['127.0.0.9', '224.0.0.5', '169.254.1.1', '0.1.2.3', '250.0.0.1']) {
      expect(fields({ 'services.lb.loadBalancerIPs': `[${ip}]` }), ip).toEqual([expect.stringMatching(/^services\[0\]\.loadBalancerIPs\[0\]: .* lies in the reserved range/)]);
    }
    expect(fields({ 'services.ext.externalIPs': '[127.1.1.1]' })).toEqual([expect.stringMatching(/^services\[1\]\.externalIPs\[0\]: .* reserved range 127\.0\.0\.0\/8/)]);
    expect(fields({ 'routers.router.routes': '[{to: 10.244.0.0/24, via: 10.240.0.4}, {to: 10.244.1.0/24, via: 10.240.0.5}, {to: 9.9.9.9, via: 10.240.0.5}]' })).toEqual([expect.stringMatching(/^routers\[0\]\.routes\[2\]\.to: 9\.9\.9\.9 lies outside/)]);
    expect(applyDiff(world(), world({ 'services.ext.externalIPs': '[5.6.7.9]' })).refused).toEqual([expect.stringMatching(/outside the lab's ranges changed \(1\.2\.3\.4, 5\.6\.7\.9\)/)]);
    expect(applyDiff(world(), world({ 'services.ext.selector': '{app: web, x: y}', 'pods.web-1.labels': '{app: web, x: y}' })).refused).toEqual([]);
  });
});

describe('a sender with an extra address', () => {
  it("the client's extra address is on its eth0; a taken or foreign one is refused", () => {
    expect(batchOf(world(), 'client')).toContain('addr add 10.241.0.40/24 dev eth0');
    expect(fields({ 'clients.client.extraAddresses': '[10.240.0.9]' })).toEqual([expect.stringMatching(/^clients\[0\]\.extraAddresses\[0\]: 10\.240\.0\.9 is not a host address of network "clients"/)]);
    expect(fields({ 'clients.client.extraAddresses': '[10.241.0.1]' })).toEqual([expect.stringMatching(/^clients\[0\]\.extraAddresses\[0\]: .*already/)]);
  });

  it('the derived walkthrough sends from it where loadBalancerSourceRanges decide, and expects each verdict', () => {
    const paths = deriveWalkthrough(world()).walkthrough.paths.filter((p) => p.traffic!.to === '1.2.3.4:80');
    expect(paths.map((p) => [p.name, p.outcome, p.traffic!.source])).toEqual([
      ['default/lb:http loadBalancer from client to 1.2.3.4:80', 'no-answer', undefined],
      ['default/lb:http loadBalancer from client (10.241.0.40) to 1.2.3.4:80', 'answered', '10.241.0.40'],
    ]);
  });

  it('a written walkthrough names it as traffic.source; an address not the sender\'s is refused at its field', () => {
    const t = world();
    const dir = mkdtempSync(join(tmpdir(), 'lab-source-'));
    try {
      const w = deriveWalkthrough(t).walkthrough;
      const write = (source: string) => {
        writeFileSync(join(dir, 'w.yaml'), stringify({ ...w, traffic: { ...w.traffic, from: 'client', to: '1.2.3.4:80', source } }, { aliasDuplicateObjects: false }));
        return { ...t, walkthrough: join(dir, 'w.yaml') };
      };
      expect(loadWalkthrough(write('10.241.0.40'), FILE).walkthrough.traffic.source).toBe('10.241.0.40');
      expect(problemsOf(() => loadWalkthrough(write('10.241.0.41'), FILE)).map((p) => `${p.field}: ${p.message}`)).toEqual([expect.stringMatching(/^traffic\.source: 10\.241\.0\.41 is not an address of client/)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
