import type { TopologyGraph } from '../../lab/picture/graph.js';
/** A synthetic graph: n nodes with two pods each, c clients, one router, vxlan or bgp overlays. */
export function synthGraph(n: number, c: number, overlay: 'vxlan' | 'bgp' | 'none' = 'vxlan'): TopologyGraph {
  const nodes = Array.from({ length: n }, (_, i) => `node${i + 1}`);
  const hosts: TopologyGraph['hosts'] = [];
  const links: TopologyGraph['links'] = [];
  for (let i = 0; i < c; i++) { hosts.push({ name: `client${i + 1}`, role: 'client', interfaces: [`eth0 10.241.0.${i + 4}/24`], bridges: [] }); links.push({ host: `client${i + 1}`, ifname: 'eth0', peerHost: 'router', bridge: 'br-clients', peer: `p-client${i + 1}` }); }
  hosts.push({ name: 'router', role: 'router', interfaces: ['route 10.240.0.100 via ' + nodes.map((_, i) => `10.240.0.${i + 4}`).join(', ')], bridges: [{ name: 'br-clients', address: '10.241.0.1/24' }, { name: 'br-nodes', address: '10.240.0.1/24' }] });
  nodes.forEach((nd, i) => {
    hosts.push({ name: nd, role: 'node', interfaces: [`eth0 10.240.0.${i + 4}/24`, `pods 10.244.${i}.0/24`], bridges: [{ name: 'cbr0', address: `10.244.${i}.1/24` }] });
    links.push({ host: nd, ifname: 'eth0', peerHost: 'router', bridge: 'br-nodes', peer: `p-${nd}` });
    for (const k of [1, 2]) { const p = `web-${i + 1}-${k}`; hosts.push({ name: p, role: 'pod', interfaces: [`eth0 10.244.${i}.${k + 1}/24`], bridges: [], node: nd }); links.push({ host: p, ifname: 'eth0', peerHost: nd, bridge: 'cbr0', peer: `veth-${p}` }); }
  });
  const overlays: TopologyGraph['overlays'] = overlay === 'vxlan' ? nodes.flatMap((a, i) => nodes.slice(i + 1).map((b) => ({ a, b, kind: 'tunnel' as const, label: 'VXLAN VNI 1, UDP 8472' }))) : overlay === 'bgp' ? nodes.map((b, i) => ({ a: 'router', b, kind: 'session' as const, label: `BGP AS64512 ↔ AS${64513 + i}` })) : [];
  return { lab: `synth${n}`, podNetwork: overlay === 'none' ? 'routed' : overlay, hosts, links, overlays, services: [{ name: 'default/web', type: 'LoadBalancer', lines: ['ClusterIP 172.31.0.5', 'TCP 443 → 8443, NodePort 32000', 'LB 10.240.0.100'] }] };
}
