import { describe, expect, it } from 'vitest';
import { InputError } from '../../lab/errors.js';
import { initialRestore, kubeProxyRules } from '../../lab/plan/kube-proxy/iptables.js';
import { nftablesRules, renderNftAdds } from '../../lab/plan/kube-proxy/nftables.js';
import { loadTopology } from '../../lab/topology/load.js';
import { deriveWalkthrough } from '../../lab/verify/derive/index.js';

/**
 * allocateLoadBalancerNodePorts: false (upstream's Service field, and its proxier: with no
 * nodePort, a port gets no KUBE-NODEPORTS rule, nftables no service-nodeports element; the
 * load balancer IP still goes through KUBE-EXT / external- to the endpoints).
 */
const noNodePorts = { 'services.web.allocateLoadBalancerNodePorts': 'false', 'services.web.ports': '[{name: https, port: 443, targetPort: 8443}]' };

describe('allocateLoadBalancerNodePorts: false', () => {
  it('a LoadBalancer port may leave out its nodePort; other types may not use the field', () => {
    expect(loadTopology('loadbalancer', noNodePorts).topology.services[0]!.ports[0]!.nodePort).toBeUndefined();
    expect(() => loadTopology('loadbalancer', { 'services.web.ports': '[{name: https, port: 443, targetPort: 8443}]' })).toThrow(/nodePort: is required for type LoadBalancer/);
    expect(() => loadTopology('nodeport', { 'services.web.allocateLoadBalancerNodePorts': 'false' })).toThrow(InputError);
  });

  it('iptables: the LB IP is served, no NodePort rule is written', () => {
    const save = initialRestore(kubeProxyRules(loadTopology('loadbalancer', noNodePorts).topology, 'node1'));
    expect(save).toMatch(/-A KUBE-SERVICES .*loadbalancer IP.* -d 10\.240\.0\.100 --dport 443 -j KUBE-EXT-/);
    expect(save).not.toMatch(/-A KUBE-NODEPORTS .*default\/web:https/);
    expect(initialRestore(kubeProxyRules(loadTopology('loadbalancer').topology, 'node1'))).toMatch(/-A KUBE-NODEPORTS .*--dport 32000 -j KUBE-EXT-/);
  });

  it('nftables: a service-ips element for the LB IP, none in service-nodeports', () => {
    const text = renderNftAdds(nftablesRules(loadTopology('loadbalancer', { ...noNodePorts, 'kubeProxy.mode': 'nftables' }).topology, 'node1')).join('\n');
    expect(text).toMatch(/add element ip kube-proxy service-ips \{ 10\.240\.0\.100 \. tcp \. 443 : goto external-/);
    expect(text).not.toMatch(/service-nodeports \{ tcp \./);
  });

  it('the derived walkthrough tries the LB IP and no NodePort', () => {
    const w = deriveWalkthrough(loadTopology('loadbalancer', noNodePorts).topology).walkthrough;
    const targets = new Set(w.paths.map((p) => p.traffic!.to));
    expect(targets.has('10.240.0.100:443')).toBe(true);
    expect([...targets].some((t) => t.endsWith(':32000'))).toBe(false);
  });
});
