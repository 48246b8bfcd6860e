import { describe, expect, it } from 'vitest';
import { initialRestore, kubeProxyRules } from '../../lab/plan/kube-proxy/iptables.js';
import { nftablesRules, renderNftAdds } from '../../lab/plan/kube-proxy/nftables.js';
import { loadTopology } from '../../lab/topology/load.js';
import type { Topology } from '../../lab/topology/schema.js';
import { deriveWalkthrough } from '../../lab/verify/derive/index.js';

/**
 * A Service without a selector has no endpoints at up. Its rules are upstream's for a service
 * with no endpoints (TestOverallIPTablesRules' "has no endpoints" REJECT in KUBE-SERVICES and
 * KUBE-EXTERNAL-SERVICES; nftables: the no-endpoint-services and no-endpoint-nodeports elements
 * that goto reject-chain), and the derived walkthrough expects the refusal.
 */
function withEmpty(mode: 'iptables' | 'nftables' = 'iptables'): Topology {
  const t = loadTopology('nodeport', { 'kubeProxy.mode': mode }).topology;
  const web = t.services[0]!;
  const empty = { ...web, name: 'empty', clusterIP: '172.31.0.9', selector: undefined, ports: [{ ...web.ports[0]!, port: 80, nodePort: 32001 }] };
  return { ...t, services: [web, empty] };
}

describe('a Service with no endpoints at up', () => {
  it('no selector is accepted; a selector that matches no pod is still refused (a typo)', () => {
    expect(() => loadTopology('nodeport', { 'services.web.selector': '' })).not.toThrow();
    expect(() => loadTopology('nodeport', { 'services.web.selector': '{app: wbe}' })).toThrow(/selects no pod/);
  });

  it('iptables: REJECT for its ClusterIP and NodePort', () => {
    const save = initialRestore(kubeProxyRules(withEmpty(), 'node1'));
    expect(save).toContain('-A KUBE-SERVICES -m comment --comment "default/empty:https has no endpoints" -m tcp -p tcp -d 172.31.0.9 --dport 80 -j REJECT');
    expect(save).toMatch(/-A KUBE-EXTERNAL-SERVICES -m comment --comment "default\/empty:https has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 32001 -j REJECT/);
    expect(save).not.toMatch(/KUBE-SVC-\S+ .*default\/empty/);
  });

  it('nftables: no-endpoint elements that goto reject-chain', () => {
    const text = renderNftAdds(nftablesRules(withEmpty('nftables'), 'node1')).join('\n');
    expect(text).toMatch(/no-endpoint-services \{ 172\.31\.0\.9 \. tcp \. 80 comment "default\/empty:https" : goto reject-chain/);
    expect(text).toMatch(/no-endpoint-nodeports \{ tcp \. 32001 comment "default\/empty:https" : goto reject-chain/);
  });

  it('the derived walkthrough expects each way in to be rejected', () => {
    const paths = deriveWalkthrough(withEmpty()).walkthrough.paths.filter((p) => p.name.startsWith('default/empty'));
    expect(paths.length).toBe(6); // the ClusterIP from a pod on each node, the NodePort on each node, the localhost NodePort on each node
    expect(paths.every((p) => p.outcome === 'no-answer')).toBe(true);
    const rules = paths.flatMap((p) => p.steps.flatMap((s) => (s.expect?.rule ? [`${s.at} ${s.expect.rule.chain} ${s.expect.rule.jump}`] : [])));
    // 127.0.0.1:<nodePort> is not DNATed either: delivered locally, INPUT's KUBE-EXTERNAL-SERVICES rejects it.
    expect(rules).toEqual(['node1 KUBE-SERVICES REJECT', 'node2 KUBE-SERVICES REJECT', 'node1 KUBE-EXTERNAL-SERVICES REJECT', 'node2 KUBE-EXTERNAL-SERVICES REJECT', 'node1 KUBE-EXTERNAL-SERVICES REJECT', 'node2 KUBE-EXTERNAL-SERVICES REJECT']);
  });
});
