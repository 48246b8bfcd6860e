import { loadBalancerOf } from '../plan/load-balancer/index.js';
import { servicePorts } from '../plan/endpoints.js';
import { bridgeAddressOf, serviceIPRoutes } from '../topology/relations.js';
import { podNetworkOf, type DrawnLink } from '../plan/pod-network/index.js';
import type { Topology } from '../topology/schema.js';
import { extraIfname, extraRouterPortName, HOST_IFNAME, networkBridgeName, podVethName, routerPortName } from '../topology/names.js';

/**
 * The topology as a picture's data: every namespace a box with its interfaces and addresses,
 * the bridges inside routers and nodes, the veth links between them, and the Services. Pure;
 * SVG, Mermaid and DOT are all drawn from it.
 */

export type HostRole = 'client' | 'router' | 'node' | 'pod';

export interface GraphHost {
  name: string;
  role: HostRole;
  /** "eth0 10.240.0.4/24" */
  interfaces: string[];
  /** Bridges inside this namespace (a router's per network, a node's cbr0), with their address. */
  bridges: { name: string; address: string }[];
  /** A pod's node. */
  node?: string;
}

export interface GraphLink {
  /** The namespace that plugs in (client, node, pod) and its interface. */
  host: string;
  ifname: string;
  /** The namespace holding the bridge, the bridge, and the veth peer's name there. */
  peerHost: string;
  bridge: string;
  peer: string;
}

export interface GraphService {
  name: string;
  type: string;
  lines: string[];
}

export interface TopologyGraph {
  lab: string;
  /** The pod network mode (podNetwork.mode). */
  podNetwork: string;
  hosts: GraphHost[];
  links: GraphLink[];
  /** What the pod network mode adds between hosts: VXLAN tunnels between VTEPs, BGP sessions. */
  overlays: DrawnLink[];
  services: GraphService[];
}

const prefix = (cidr: string) => cidr.split('/')[1]!;

export function topologyGraph(t: Topology): TopologyGraph {
  const subnet = new Map(t.networks.map((n) => [n.name, n.subnet]));
  const hosts: GraphHost[] = [];
  const links: GraphLink[] = [];
  const routerOf = (network: string) => t.routers.find((r) => r.interfaces.some((i) => i.network === network));
  const podNetwork = podNetworkOf(t);
  const loadBalancer = loadBalancerOf(t);
  const podNet = loadBalancer.extend(t, podNetwork.plan(t));
  const vtepLine = (node: string) => podNet.tunnel?.vteps.filter((v) => v.node === node).map((v) => `${v.device} ${v.address}/32 VTEP ${v.mac}`) ?? [];
  const eth0 = (h: { address: string; network: string; extraAddresses?: string[] }) => [h.address, ...(h.extraAddresses ?? [])].map((a) => `${HOST_IFNAME} ${a}/${prefix(subnet.get(h.network)!)}`);
  for (const c of t.clients) hosts.push({ name: c.name, role: 'client', interfaces: eth0(c), bridges: [] });
  for (const r of t.routers) {
    // With the lab's own routes to service IPs outside its networks.
    const routes = [...r.routes.filter((x) => podNetwork.keepsRouterRoute(t, x) && loadBalancer.keepsRouterRoute(t, x)), ...serviceIPRoutes(t, (ip) => !loadBalancer.keepsRouterRoute(t, { to: ip, via: [] })).filter((x) => x.router === r.name)];
    const announced = loadBalancer.announcements(t).map((a) => `${loadBalancer.announcementLabel(a.ip)} from ${a.nodes.join(', ') || 'nobody (withdrawn)'}`);
    hosts.push({ name: r.name, role: 'router', interfaces: [...routes.map((x) => `route ${x.to} via ${[x.via].flat().join(', ')}`), ...announced], bridges: r.interfaces.map((i) => ({ name: networkBridgeName(i.network), address: `${i.address}/${prefix(subnet.get(i.network)!)}` })) });
  }
  for (const n of t.nodes) {
    const gw = bridgeAddressOf(n);
    hosts.push({ name: n.name, role: 'node', interfaces: [...eth0(n), ...(n.interfaces ?? []).map((i, j) => `${extraIfname(j + 1)} ${i.address}/${prefix(subnet.get(i.network)!)}`), `pods ${n.podCIDR}`, ...vtepLine(n.name)], bridges: [{ name: n.bridge, address: `${gw}/${prefix(n.podCIDR)}` }] });
  }
  for (const p of t.pods) {
    const node = t.nodes.find((n) => n.name === p.node)!;
    hosts.push({ name: p.name, role: 'pod', interfaces: [`${HOST_IFNAME} ${p.address}/${prefix(node.podCIDR)}`, ...(p.terminating ? ['terminating'] : []), ...(p.ready ? [] : ['not ready'])], bridges: [], node: p.node });
    links.push({ host: p.name, ifname: HOST_IFNAME, peerHost: node.name, bridge: node.bridge, peer: podVethName(p.name) });
  }
  for (const h of [...t.clients, ...t.nodes]) {
    const router = routerOf(h.network);
    if (router) links.push({ host: h.name, ifname: HOST_IFNAME, peerHost: router.name, bridge: networkBridgeName(h.network), peer: routerPortName(h.name) });
  }
  for (const n of t.nodes) {
    (n.interfaces ?? []).forEach((i, j) => {
      const router = routerOf(i.network);
      if (router) links.push({ host: n.name, ifname: extraIfname(j + 1), peerHost: router.name, bridge: networkBridgeName(i.network), peer: extraRouterPortName(n.name, j + 1) });
    });
  }
  const services = t.services.map((s) => ({
    name: `${s.namespace}/${s.name}`,
    type: s.type,
    lines: [
      `ClusterIP ${s.clusterIP}`,
      ...s.ports.map((p) => `${p.protocol} ${p.port} → ${p.targetPort}${p.nodePort ? `, NodePort ${p.nodePort}` : ''}`),
      ...(s.loadBalancerIPs.length ? [`LB ${s.loadBalancerIPs.join(', ')}`] : []),
      ...(s.externalIPs.length ? [`externalIPs ${s.externalIPs.join(', ')}`] : []),
      // The EndpointSlices' endpoints (from the selected pods, or written out), as kube-proxy uses them.
      ...servicePorts(t)
        .filter((v) => v.service === s)
        .map((v) => `${s.ports.length > 1 ? `${v.port.name} ` : ''}endpoints: ${[...v.endpoints, ...v.terminating].map((e) => `${e.pod} ${e.address}${e.ready ? '' : ' (terminating)'}`).join(', ') || 'none'}`),
      ...(s.externalTrafficPolicy !== 'Cluster' ? [`externalTrafficPolicy ${s.externalTrafficPolicy}`] : []),
      ...(s.internalTrafficPolicy !== 'Cluster' ? [`internalTrafficPolicy ${s.internalTrafficPolicy}`] : []),
      ...(s.sessionAffinity !== 'None' ? [`sessionAffinity ${s.sessionAffinity}`] : []),
    ],
  }));
  return { lab: t.lab, podNetwork: t.podNetwork.mode, hosts, links, overlays: podNet.drawn, services };
}

const id = (s: string) => s.replace(/[^A-Za-z0-9_]/g, '_');

/** Mermaid flowchart text. */
export function graphMermaid(g: TopologyGraph): string {
  const out = ['flowchart TB'];
  for (const h of g.hosts) {
    const lines = [`<b>${h.name}</b> (${h.role})`, ...h.interfaces, ...h.bridges.map((b) => `${b.name} ${b.address}`)];
    out.push(`  ${id(h.name)}["${lines.join('<br/>')}"]`);
  }
  for (const l of g.links) out.push(`  ${id(l.host)} ---|"${l.ifname} ↔ ${l.peer} (${l.bridge})"| ${id(l.peerHost)}`);
  for (const o of g.overlays) out.push(`  ${id(o.a)} -.-|"${o.label}"| ${id(o.b)}`);
  for (const s of g.services) out.push(`  svc_${id(s.name)}{{"Service ${s.name} (${s.type})<br/>${s.lines.join('<br/>')}"}}`);
  return `${out.join('\n')}\n`;
}

/** Graphviz DOT text. */
export function graphDot(g: TopologyGraph): string {
  const q = (s: string) => `"${s.replace(/"/g, '\\"')}"`;
  const out = [`graph ${q(g.lab)} {`, '  node [shape=box, fontname="monospace"];'];
  for (const h of g.hosts) out.push(`  ${q(h.name)} [label=${q([`${h.name} (${h.role})`, ...h.interfaces, ...h.bridges.map((b) => `${b.name} ${b.address}`)].join('\\n'))}];`);
  for (const l of g.links) out.push(`  ${q(l.host)} -- ${q(l.peerHost)} [label=${q(`${l.ifname} ↔ ${l.peer}\\n${l.bridge}`)}];`);
  for (const o of g.overlays) out.push(`  ${q(o.a)} -- ${q(o.b)} [style=dashed, label=${q(o.label)}];`);
  for (const s of g.services) out.push(`  ${q(`svc ${s.name}`)} [shape=hexagon, label=${q([`Service ${s.name} (${s.type})`, ...s.lines].join('\\n'))}];`);
  out.push('}');
  return `${out.join('\n')}\n`;
}
