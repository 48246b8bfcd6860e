import type { Topology } from '../topology/schema.js';
import type { Walkthrough } from '../verify/walkthrough.js';

/**
 * The faults `lab break` can put into a live lab: each one a thing people hit in real clusters.
 * This module is pure: which faults apply to a lab, and, from what was read of the live kernel,
 * the commands that break it, the commands that undo it and the reading that tells it is fixed.
 */

/** One command, run inside the namespace of one of the lab's hosts. */
export interface HostCommand {
  host: string;
  argv: string[];
  /** Given on stdin (iptables-restore, nft -f). */
  input?: string;
  /** A repair step that may find nothing to undo (conntrack -D of entries that expired). */
  mayFail?: boolean;
}

/** How to tell the fault is gone: run `argv` on `host`; healthy when its output matches (or, with absent, does not). */
export interface HealthyWhen {
  host: string;
  argv: string[];
  pattern: string;
  absent?: boolean;
}

/** A fault, planned against one lab: recorded in the lab's state before the kernel is touched. */
export interface FaultPlan {
  fault: string;
  /** What was broken where, in a few words (for the learner after they give up). */
  summary: string;
  breakSteps: HostCommand[];
  repairSteps: HostCommand[];
  healthy: HealthyWhen;
  /** Requests that show the symptom where no walkthrough step does (verify and --check send them). */
  probes?: FaultProbe[];
}

/** A request that must be answered while the lab is healthy: `from` a host of the lab `to` ip:port. */
export interface FaultProbe {
  from: string;
  to: string;
  /** What the request stands for, in words (verify's step title). */
  what: string;
}

/** What a fault's plan may read of the live lab first (a route, a chain, a sysctl's value). */
export type Reader = (host: string, argv: string[]) => Promise<string>;

export interface FaultContext {
  topology: Topology;
  walkthrough?: Walkthrough;
}

export interface Fault {
  name: string;
  /** One line: what breaks, and what a learner sees. */
  description: string;
  /** Words a learner's free-text diagnosis may use for it (any one, case-insensitive, matches). */
  keywords: string[];
  /** Where it applies, in words (lab break --list). */
  where: string;
  /** Why it does not apply to this lab; undefined when it does. */
  refusal(c: FaultContext): string | undefined;
  plan(c: FaultContext, read: Reader): Promise<FaultPlan>;
}

const sysctlSet = (host: string, key: string, value: string): HostCommand => ({ host, argv: ['sysctl', '-qw', `${key}=${value}`] });
const sysctlIs = (host: string, key: string, pattern: string): HealthyWhen => ({ host, argv: ['sysctl', '-n', key], pattern });

/** Pods that send a walkthrough's traffic (a pod-to-Service request crosses its node's bridge twice). */
export function sendingPods(c: FaultContext): string[] {
  const pods = new Set(c.topology.pods.map((p) => p.name));
  const from = [c.walkthrough?.traffic.from, ...(c.walkthrough?.paths ?? []).map((p) => p.traffic?.from)];
  return [...new Set(from.filter((f): f is string => f !== undefined && pods.has(f)))];
}

const nodeOf = (t: Topology, pod: string) => t.pods.find((p) => p.name === pod)!.node;
const hasNodePort = (t: Topology) => t.services.some((s) => s.type === 'NodePort' || s.type === 'LoadBalancer');

export const bridgeNfCallIptables: Fault = {
  name: 'bridge-nf-call-iptables',
  description: "bridge-nf-call-iptables off on a node: a same-node pod's reply is bridged past conntrack, so the Service's DNAT is never undone",
  keywords: ['bridge-nf', 'br_netfilter', 'bridge nf', 'bridge-nf-call', 'bridged'],
  where: 'scenarios where a pod calls a Service (clusterip, internal-local), every mode',
  refusal: (c) => (sendingPods(c).length ? undefined : 'no pod of this lab sends traffic to a Service, so no reply is bridged on a node'),
  async plan(c) {
    const node = nodeOf(c.topology, sendingPods(c)[0]!);
    const key = 'net.bridge.bridge-nf-call-iptables';
    return { fault: this.name, summary: `${key}=0 on ${node}`, breakSteps: [sysctlSet(node, key, '0')], repairSteps: [sysctlSet(node, key, '1')], healthy: sysctlIs(node, key, '^1$') };
  },
};

/** The first TCP NodePort of the lab (a localhost NodePort is what route_localnet lets through). */
export function firstNodePort(t: Topology): number | undefined {
  for (const s of t.services) {
    if (s.type !== 'NodePort' && s.type !== 'LoadBalancer') continue;
    const p = s.ports.find((x) => x.nodePort !== undefined && x.protocol === 'TCP');
    if (p) return p.nodePort;
  }
  return undefined;
}

export const routeLocalnet: Fault = {
  name: 'route-localnet',
  description: 'route_localnet off on a node: NodePorts on 127.0.0.1 stop answering (the kernel will not route a 127.0.0.1 packet out to a pod)',
  keywords: ['route_localnet', 'route-localnet', 'localnet', 'localhost', '127.0.0.1'],
  where: 'scenarios with a NodePort, iptables proxy mode (nftables mode has no localhost NodePorts)',
  refusal(c) {
    if (c.topology.kubeProxy.mode !== 'iptables') return "kube-proxy's nftables mode does not accept NodePorts on 127.0.0.1, so route_localnet changes nothing";
    return firstNodePort(c.topology) !== undefined ? undefined : 'this lab has no TCP NodePort';
  },
  async plan(c) {
    const node = c.topology.nodes[0]!.name;
    const key = 'net.ipv4.conf.all.route_localnet';
    const probes = [{ from: node, to: `127.0.0.1:${firstNodePort(c.topology)!}`, what: `a localhost NodePort on ${node}` }];
    return { fault: this.name, summary: `${key}=0 on ${node}`, breakSteps: [sysctlSet(node, key, '0')], repairSteps: [sysctlSet(node, key, '1')], healthy: sysctlIs(node, key, '^1$'), probes };
  },
};

/**
 * A multi-homed node that routes a client's network out of another interface than eth0 (its
 * `interfaces` put it on that network directly), while the lab's clients there reach a NodePort:
 * their requests come in on eth0 through the router and the replies leave by eth1.
 */
export function asymmetricNode(t: Topology): { node: string; via: string; network: string } | undefined {
  if (!hasNodePort(t)) return undefined;
  for (const n of t.nodes) {
    const k = (n.interfaces ?? []).findIndex((i) => t.clients.some((c) => c.network === i.network));
    if (k >= 0) return { node: n.name, via: `eth${k + 1}`, network: n.interfaces![k]!.network };
  }
  return undefined;
}

export const rpFilterStrict: Fault = {
  name: 'rp-filter-strict',
  description: "strict rp_filter on a node's eth0: packets whose route back leaves by another interface are dropped (a multi-homed node's clients time out)",
  keywords: ['rp_filter', 'rp-filter', 'reverse path', 'reverse-path', 'rpf', 'asymmetric'],
  where: 'a multi-homed node that routes its clients back out of another interface than eth0 (nodeport-multihomed), every mode',
  // Measured in every other built-in scenario and pod network mode: each node routes every source
  // it hears from (the client subnet, its peers, other nodes' pod CIDRs) out of the same eth0 it
  // arrived on, so strict rp_filter drops nothing and verify would pass. Refused, not pretended.
  refusal: (c) =>
    asymmetricNode(c.topology)
      ? undefined
      : 'every node of this lab routes each source it hears from back out of the interface it arrived on (eth0), so strict rp_filter drops nothing here: verify would still pass (nodeport-multihomed has a node where it bites)',
  async plan(c, read) {
    const { node, via } = asymmetricNode(c.topology)!;
    const key = 'net.ipv4.conf.eth0.rp_filter';
    const before = (await read(node, ['sysctl', '-n', key])).trim() || '0';
    return {
      fault: this.name,
      summary: `${key}=1 on ${node}, whose route back to the clients leaves by ${via}`,
      breakSteps: [sysctlSet(node, key, '1')],
      // Strict when either is 1 (the kernel takes the larger of conf.all and conf.eth0): fixed only when neither is.
      repairSteps: [sysctlSet(node, key, before === '1' ? '0' : before)],
      healthy: { host: node, argv: ['sysctl', '-n', 'net.ipv4.conf.all.rp_filter', key], pattern: '^[02]\n[02]$' },
    };
  },
};
