/**
 * Topologies for the scale benchmark, generated: the NodePort world of seed 000 with `pods`
 * backend pods spread over two nodes, and optionally `services` ClusterIP Services that all
 * select them, or (`ownPods`) that all select two pods of their own (api-1, api-2, one per node),
 * so that scaling the web pods changes one Service only. Pure: returns the YAML text.
 */

/** The n-th address (from 0) of a node's /22 pod range, skipping the network and gateway addresses. */
const podAddress = (node: number, n: number) => {
  const offset = n + 2;
  return `10.244.${node * 4 + Math.floor(offset / 256)}.${offset % 256}`;
};

export function scaleTopology(lab: string, pods: number, services = 0, opts: { ownPods?: boolean } = {}): string {
  const limit = opts.ownPods ? 2 * 1018 : 2 * 1019;
  if (pods > limit) throw new Error(`at most ${limit} pods fit two /22 pod ranges`);
  const lines = [
    `lab: ${lab}`,
    `description: ${pods} pods over two nodes${services ? `, ${services} ClusterIP services` : ''} (benchmark)`,
    'cluster: { podCIDR: 10.244.0.0/16, serviceCIDR: 172.31.0.0/16 }',
    'networks:',
    '  - { name: nodes, subnet: 10.240.0.0/24 }',
    '  - { name: clients, subnet: 10.241.0.0/24 }',
    'routers:',
    '  - name: router',
    '    interfaces:',
    '      - { network: nodes, address: 10.240.0.1 }',
    '      - { network: clients, address: 10.241.0.1 }',
    '    routes:',
    '      - { to: 10.244.0.0/22, via: 10.240.0.4 }',
    '      - { to: 10.244.4.0/22, via: 10.240.0.5 }',
    'nodes:',
    '  - { name: node1, network: nodes, address: 10.240.0.4, podCIDR: 10.244.0.0/22, bridge: cbr0 }',
    '  - { name: node2, network: nodes, address: 10.240.0.5, podCIDR: 10.244.4.0/22, bridge: cbr0 }',
    'clients:',
    '  - { name: client, network: clients, address: 10.241.0.4 }',
    'pods:',
  ];
  for (let i = 0; i < pods; i++) {
    const node = i % 2;
    lines.push(`  - { name: web-${i + 1}, node: node${node + 1}, address: ${podAddress(node, Math.floor(i / 2))}, labels: { app: web } }`);
  }
  // The services' own pods take the last address of each node's range.
  if (opts.ownPods) for (const node of [0, 1]) lines.push(`  - { name: api-${node + 1}, node: node${node + 1}, address: ${podAddress(node, 1018)}, labels: { app: api } }`);
  const selected = opts.ownPods ? 'api' : 'web';
  lines.push('services:');
  lines.push('  - { name: web, namespace: default, type: NodePort, clusterIP: 172.31.0.5, selector: { app: web }, ports: [{ name: https, port: 443, targetPort: 8443, nodePort: 32000 }] }');
  for (let i = 0; i < services; i++) {
    const ip = `172.31.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
    lines.push(`  - { name: svc-${i + 1}, namespace: default, type: ClusterIP, clusterIP: ${ip}, selector: { app: ${selected} }, ports: [{ name: http, port: 80, targetPort: 8443 }] }`);
  }
  return `${lines.join('\n')}\n`;
}
