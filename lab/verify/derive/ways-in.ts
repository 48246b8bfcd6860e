import { selects, serviceIPRoutes } from '../../topology/relations.js';
import type { Node, Service, ServicePort, Topology } from '../../topology/schema.js';
import { cidrContains, parseCidr, parseIPv4 } from '../../util/ipv4.js';
import { joinHostPort } from '../../util/ipv6.js';
import { nodePortOpenOn, proxySettings } from '../../plan/kube-proxy/settings.js';
import type { Entry } from './semantics.js';

/**
 * The ways into each Service port a derived walkthrough tries: its ClusterIP from a pod on each
 * node, its NodePort on each node from each client, its load balancer and external IPs from each
 * client (at the nodes the network routes them to); NodePorts on the nodes' extra addresses too,
 * and load balancer IPs with source ranges from the clients' extra addresses. Pure.
 */
export interface WayIn {
  service: Service;
  port: ServicePort;
  entry: Entry;
  /** The sending host (a pod for the ClusterIP, else a client) and its address. */
  from: string;
  fromAddress: string;
  /** Set when the sender sends from one of its extraAddresses (traffic.source), not its primary one. */
  source?: string;
  /** ip:port the requests go to. */
  to: string;
  /** The nodes that translate it: one, or several behind an ECMP route. */
  nodes: Node[];
  /** Several nodes, and the router spreads connections over them by ports too (hashPorts): each sees some. */
  spreadByPorts: boolean;
  /** A localhost NodePort: the node itself sends from 127.0.0.1 to 127.0.0.1:<nodePort> (localhost.ts). */
  localhost?: true;
}

export interface DerivedWays {
  ways: WayIn[];
  /** What is not tried, and why: one line each. */
  skipped: string[];
}

export const portLabel = (s: Service, p: ServicePort) => `${s.namespace}/${s.name}:${p.name || p.port}`;

export function waysIn(t: Topology): DerivedWays {
  const ways: WayIn[] = [];
  const skipped: string[] = [];
  for (const service of t.services) {
    for (const port of service.ports) {
      const why = untestable(t, service, port);
      if (why) skipped.push(`${portLabel(service, port)}: ${why}`);
      else ways.push(...waysToPort(t, service, port, skipped));
    }
  }
  return { ways, skipped };
}

/** Why a port cannot be tried with the lab's requests (HTTP over TCP, datagrams over UDP), if it cannot. */
export function untestable(t: Topology, service: Service, port: ServicePort): string | undefined {
  if (port.protocol === 'SCTP') return 'SCTP: verify sends HTTP over TCP and datagrams over UDP, not SCTP';
  // Over UDP the DNS pod answers too (hostname.bind); over TCP it speaks DNS, not HTTP.
  const dns = port.protocol === 'UDP' ? [] : t.pods.filter((p) => selects(service, p) && p.workload !== 'http');
  if (dns.length > 0) return `its pods ${dns.map((p) => p.name).join(', ')} run the DNS workload, which does not answer HTTP`;
  return undefined;
}

function waysToPort(t: Topology, service: Service, port: ServicePort, skipped: string[]): WayIn[] {
  const out: WayIn[] = [];
  const way = (entry: Entry, from: { name: string; address: string; source?: string }, to: string, nodes: Node[], spreadByPorts = false) =>
    out.push({ service, port, entry, from: from.name, fromAddress: from.source ?? from.address, ...(from.source ? { source: from.source } : {}), to, nodes, spreadByPorts });
  for (const node of t.nodes) {
    const sender = clusterSender(t, service, node);
    if (sender) way('clusterIP', sender, joinHostPort(service.clusterIP, port.port), [node]);
    else skipped.push(`${portLabel(service, port)}: the ClusterIP from ${node.name}: no pod runs there to send from`);
  }
  const external = service.type !== 'ClusterIP';
  if (external && port.nodePort !== undefined) {
    const settings = proxySettings(t);
    for (const node of t.nodes) {
      // --nodeport-addresses: a NodePort answers only on the node addresses it names.
      if (!nodePortOpenOn(settings, node, node.address)) {
        skipped.push(`${portLabel(service, port)}: the NodePort on ${node.name}: kubeProxy.nodePortAddresses leaves out ${node.address}`);
        continue;
      }
      for (const client of t.clients) way('nodePort', client, joinHostPort(node.address, port.nodePort), [node]);
      // The node's extra addresses, where NodePorts answer on them too.
      for (const extra of (node.extraAddresses ?? []).filter((a) => nodePortOpenOn(settings, node, a))) {
        for (const client of t.clients) way('nodePort', client, joinHostPort(extra, port.nodePort), [node]);
      }
    }
  }
  const vips: [Entry, string[]][] = [['loadBalancer', service.type === 'LoadBalancer' ? service.loadBalancerIPs : []], ['externalIP', service.externalIPs]];
  for (const [entry, ips] of vips) {
    for (const ip of ips) {
      const route = routedTo(t, ip);
      if (route.nodes.length === 0) {
        skipped.push(`${portLabel(service, port)}: ${ip}: no router route leads it to a node`);
        continue;
      }
      for (const client of t.clients) {
        way(entry, client, joinHostPort(ip, port.port), route.nodes, route.spreadByPorts);
        // Where the source decides (loadBalancerSourceRanges), from the client's extra addresses too.
        if (entry === 'loadBalancer' && service.loadBalancerSourceRanges.length > 0) {
          for (const source of client.extraAddresses ?? []) way(entry, { ...client, source }, joinHostPort(ip, port.port), route.nodes, route.spreadByPorts);
        }
      }
    }
  }
  if (external && t.clients.length === 0) skipped.push(`${portLabel(service, port)}: the topology has no client to send from outside the cluster`);
  return out;
}

/** A pod on the node to call the ClusterIP from: one the Service does not select, else one it does (a hairpin when it picks itself). */
function clusterSender(t: Topology, service: Service, node: Node) {
  const here = t.pods.filter((p) => p.node === node.name);
  return here.find((p) => !selects(service, p)) ?? here[0];
}

/** The nodes a router sends an address to: the most specific route holding it, its next hops that are nodes. */
function routedTo(t: Topology, ip: string): { nodes: Node[]; spreadByPorts: boolean } {
  const addr = parseIPv4(ip);
  let best: { prefix: number; via: string[]; hashPorts: boolean } | undefined;
  for (const r of t.routers) {
    for (const route of r.routes) {
      const c = parseCidr(route.to.includes('/') ? route.to : `${route.to}/32`);
      if (!c || addr === undefined || !cidrContains(c, addr) || (best && best.prefix >= c.prefix)) continue;
      best = { prefix: c.prefix, via: Array.isArray(route.via) ? route.via : [route.via], hashPorts: r.hashPorts };
    }
  }
  // A service IP outside the lab's ranges that no route covers: the lab's own route to the nodes.
  if (!best) {
    const added = serviceIPRoutes(t).find((r) => r.to === `${ip}/32`);
    if (added) best = { prefix: 32, via: added.via, hashPorts: t.routers.find((r) => r.name === added.router)!.hashPorts };
  }
  const nodes = (best?.via ?? []).flatMap((hop) => t.nodes.filter((n) => n.address === hop));
  return { nodes, spreadByPorts: nodes.length > 1 && Boolean(best?.hashPorts) };
}
