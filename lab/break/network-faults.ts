import { birdPaths, birdProtocolName } from '../plan/bird.js';
import { labDir } from '../state/store.js';
import { NFT_TABLE } from '../plan/kube-proxy/nftables.js';
import type { Topology } from '../topology/schema.js';
import type { Fault, FaultContext, FaultPlan, Reader } from './catalogue.js';

/** The faults of the network between the nodes and of kube-proxy's rules. Pure, as the catalogue. */

/** The node whose pods the fault cuts off: the last, so that node1's traffic crosses to it. */
const farNode = (t: Topology) => t.nodes[t.nodes.length - 1]!;

/** The fault's plan per pod network mode: where the route (or FDB entry) to the far node's pods lives. */
async function podRoutePlan(c: FaultContext, read: Reader, name: string): Promise<FaultPlan> {
  const t = c.topology;
  const far = farNode(t);
  const near = t.nodes[0]!.name;
  const cidr = far.podCIDR;
  const mode = t.podNetwork.mode;
  if (mode === 'vxlan') {
    const fdb = await read(near, ['bridge', 'fdb', 'show', 'dev', 'flannel.1']);
    const mac = new RegExp(`^(\\S+) dst ${far.address.replaceAll('.', '\\.')} `, 'm').exec(fdb)?.[1];
    if (!mac) throw new Error(`${near} has no FDB entry toward ${far.name}'s VTEP ${far.address}`);
    const entry = [mac, 'dev', 'flannel.1', 'dst', far.address, 'self'];
    return {
      fault: name,
      summary: `${near}'s FDB entry for ${far.name}'s VTEP (${mac} dst ${far.address}) deleted`,
      breakSteps: [{ host: near, argv: ['bridge', 'fdb', 'del', ...entry] }],
      repairSteps: [{ host: near, argv: ['bridge', 'fdb', 'replace', ...entry, 'permanent'] }],
      healthy: { host: near, argv: ['bridge', 'fdb', 'show', 'dev', 'flannel.1'], pattern: `dst ${far.address} ` },
    };
  }
  const router = t.routers[0]!.name;
  const healthy = (host: string) => ({ host, argv: ['ip', 'route', 'show', 'exact', cidr], pattern: '\\S' });
  if (mode === 'bgp') {
    // BIRD would put a hand-deleted route back within its scan time: the session to the node goes down instead.
    const proto = birdProtocolName(far.name);
    const birdc = (verb: string) => ['birdc', '-s', birdPaths(labDir(t.lab), router).socket, verb, proto];
    return { fault: name, summary: `${router}'s BGP session to ${far.name} disabled: its route to ${cidr} withdrawn`, breakSteps: [{ host: router, argv: birdc('disable') }], repairSteps: [{ host: router, argv: birdc('enable') }], healthy: healthy(router) };
  }
  const host = mode === 'host-gw' ? near : router;
  const line = (await read(host, ['ip', '-o', 'route', 'show', 'exact', cidr])).trim();
  if (!line) throw new Error(`${host} has no route to ${cidr}`);
  return {
    fault: name,
    summary: `${host}'s route to ${far.name}'s pod CIDR ${cidr} (${line}) deleted`,
    breakSteps: [{ host, argv: ['ip', 'route', 'del', cidr] }],
    repairSteps: [{ host, argv: ['ip', 'route', 'replace', ...line.split(/\s+/)] }],
    healthy: healthy(host),
  };
}

export const podRouteGone: Fault = {
  name: 'pod-route-gone',
  description: "the route to one node's pod CIDR is gone (the router's, host-gw's on the node, or in vxlan mode the FDB entry): cross-node requests time out",
  keywords: ['route', 'fdb', 'pod cidr', 'podcidr', 'bgp', 'vtep'],
  where: 'every scenario with two nodes and a cross-node path; routed and host-gw: a route, vxlan: the FDB entry, bgp: the BGP session',
  refusal: (c) => (c.topology.nodes.length < 2 ? 'this lab has one node: no traffic crosses between nodes' : c.topology.routers.length === 0 ? 'this lab has no router' : undefined),
  plan(c, read) {
    return podRoutePlan(c, read, this.name);
  },
};

/** The Service whose chain is emptied: the first one the walkthrough's traffic goes to (or the first Service). */
function targetService(t: Topology, w: FaultContext['walkthrough']): { ns: string; name: string } {
  const to = w?.traffic.to ?? '';
  const svc = t.services.find((s) => to.startsWith(`${s.clusterIP}:`) || to.startsWith(`${s.name}.`)) ?? t.services.find((s) => s.type !== 'ClusterIP') ?? t.services[0]!;
  return { ns: svc.namespace, name: svc.name };
}

/** In iptables-save's nat table, the KUBE-SVC chain of the Service and its rules. Pure. */
export function iptablesServiceChain(natSave: string, svc: { ns: string; name: string }): { chain: string; rules: string[] } | undefined {
  const lines = natSave.split('\n');
  const chain = lines.map((l) => /^-A (KUBE-SVC-\S+) .*--comment "?([^"\s]+)/.exec(l)).find((m) => m && m[2]!.startsWith(`${svc.ns}/${svc.name}:`))?.[1];
  return chain ? { chain, rules: lines.filter((l) => l.startsWith(`-A ${chain} `)) } : undefined;
}

/** In `nft list table`, the name of the Service's service- chain. Pure. */
export function nftServiceChain(listing: string, svc: { ns: string; name: string }): string | undefined {
  return new RegExp(`chain (service-[A-Z0-9]+-${svc.ns}/${svc.name}/[^\\s{]+) \\{`).exec(listing)?.[1];
}

async function chainPlan(c: FaultContext, read: Reader, name: string): Promise<FaultPlan> {
  const node = c.topology.nodes[0]!.name;
  const svc = targetService(c.topology, c.walkthrough);
  if (c.topology.kubeProxy.mode === 'nftables') {
    const chain = nftServiceChain(await read(node, ['nft', 'list', 'table', 'ip', NFT_TABLE]), svc);
    if (!chain) throw new Error(`${node} has no service- chain for ${svc.ns}/${svc.name}`);
    const saved = await read(node, ['nft', 'list', 'chain', 'ip', NFT_TABLE, chain]);
    return {
      fault: name,
      summary: `${node}'s nftables chain ${chain} flushed`,
      breakSteps: [{ host: node, argv: ['nft', 'flush', 'chain', 'ip', NFT_TABLE, chain] }],
      repairSteps: [{ host: node, argv: ['nft', '-f', '-'], input: `flush chain ip ${NFT_TABLE} ${chain}\n${saved}\n` }],
      healthy: { host: node, argv: ['nft', 'list', 'chain', 'ip', NFT_TABLE, chain], pattern: 'endpoint-' },
    };
  }
  const found = iptablesServiceChain(await read(node, ['iptables-save', '-t', 'nat']), svc);
  if (!found) throw new Error(`${node} has no KUBE-SVC chain for ${svc.ns}/${svc.name}`);
  return {
    fault: name,
    summary: `${node}'s iptables chain ${found.chain} (${svc.ns}/${svc.name}) flushed`,
    breakSteps: [{ host: node, argv: ['iptables', '-t', 'nat', '-F', found.chain] }],
    repairSteps: [{ host: node, argv: ['iptables-restore', '--noflush'], input: `*nat\n:${found.chain} - [0:0]\n${found.rules.join('\n')}\nCOMMIT\n` }],
    healthy: { host: node, argv: ['iptables', '-t', 'nat', '-S', found.chain], pattern: 'KUBE-SEP-' },
  };
}

export const serviceChainEmptied: Fault = {
  name: 'service-chain-emptied',
  description: "a Service's kube-proxy chain emptied on a node, as a half-applied sync leaves it: the Service stops balancing there",
  keywords: ['chain', 'kube-svc', 'service-', 'rules', 'sync', 'kube-proxy', 'iptables', 'nft'],
  where: 'every scenario and mode, both proxy modes (iptables: the KUBE-SVC chain, nftables: the service- chain)',
  refusal: (c) => (c.topology.services.length ? undefined : 'this lab has no Service'),
  plan(c, read) {
    return chainPlan(c, read, this.name);
  },
};
