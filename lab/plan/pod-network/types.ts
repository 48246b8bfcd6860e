import type { Node, PodNetworkMode, RouterRoute, Topology } from '../../topology/schema.js';

/**
 * The pod network between nodes, one module per mode (routed, host-gw, vxlan, bgp). Plan, apply,
 * verify, trace and the pictures ask the topology's module (podNetworkOf) and never test the
 * mode's name: what a mode adds is data here.
 */

/** Reports one problem of a topology at a field path (the check context's `at`: file:line). */
export type ProblemAt = (path: PropertyKey[], message: string) => void;

/** What the mode adds inside one namespace, after its own links, addresses and routes. */
export interface NamespaceAdditions {
  /** `ip -batch` lines: devices, addresses, routes, neighbours. */
  batch: string[];
  /**
   * `ip -batch` lines of a dual-stack cluster's IPv6 half, run once the namespace has its IPv6
   * addresses (an IPv6 route via a peer needs the connected /64 first): flannel's IPv6 routes,
   * its flannel-v6.1 device. Empty for an IPv4-only cluster.
   */
  batch6: string[];
  /** `bridge -batch` lines (FDB entries: iproute2's `ip` cannot write them). */
  bridgeBatch: string[];
  sysctls: Record<string, string>;
}

/** A VXLAN tunnel endpoint: one per node, as flanneld's VTEP. */
export interface Vtep {
  node: string;
  /** The VXLAN device, e.g. flannel.1. */
  device: string;
  /** The device's MAC, fixed per node (flanneld publishes its VTEP MAC in the node's annotations). */
  mac: string;
  /** The device's address: the node pod CIDR's network address, as a /32 (10.244.0.0 on node1). */
  address: string;
  /** The outer source: the node's own address on eth0. */
  underlay: string;
}

/** An overlay the packet is wrapped in between nodes: what verify decodes, and trace and the pictures show. */
export interface Tunnel {
  kind: 'vxlan';
  vni: number;
  /** The outer UDP destination port (8472: flannel's, the Linux kernel's historic default). */
  port: number;
  /** Bytes the encapsulation adds to each inner IP packet: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
  overhead: number;
  vteps: Vtep[];
}

/**
 * A process the mode runs inside a lab namespace (bgp: BIRD in every node and router): apply
 * starts each once the links are up and records its PID in the state; down, rollback and the
 * crash sweep stop it by PID.
 */
export interface DaemonSpec {
  /** The host whose namespace it runs in. */
  host: string;
  ns: string;
  /** A short name for status and errors, e.g. "bird". */
  name: string;
  argv: string[];
  /** Files written under the lab's state folder before it starts (its configuration), relative to that folder. */
  files: { path: string; content: string }[];
  /** Its control socket (absolute; in its command line: tells it from any other) and its log. */
  socket: string;
  log: string;
  /** Started in waves: wave 1 once every wave-0 daemon answers (the routers' BIRDs listen before the nodes dial). */
  wave: 0 | 1;
  /**
   * Ready when these BGP protocols are Established and these prefixes are in its namespace's main
   * table (proto bird); a daemon that is no BIRD (MetalLB's layer-2 speaker) when its log has logLine.
   */
  ready: { established: string[]; routes: string[]; logLine?: string };
}

/** A line the pictures draw between two hosts for the mode: a VXLAN tunnel between VTEPs, a BGP session. */
export interface DrawnLink {
  a: string;
  b: string;
  kind: 'tunnel' | 'session';
  /** e.g. "VXLAN VNI 1, UDP 8472" or "BGP". */
  label: string;
}

/** Everything a mode contributes to a lab's plan. Pure data (it is part of the Plan). */
export interface PodNetworkPlan {
  mode: PodNetworkMode;
  /** Per node name and per router name. */
  nodes: Record<string, NamespaceAdditions>;
  routers: Record<string, NamespaceAdditions>;
  /** MTU of each node's bridge and of every pod's veth pair (both ends); undefined: the link default. */
  podMtu?: number;
  tunnel?: Tunnel;
  daemons: DaemonSpec[];
  /** What `lab graph` and report.html draw for the mode, beside the wires. */
  drawn: DrawnLink[];
}

/** What verify, trace and the pictures say about the hop between two nodes. */
export interface CrossNodeHop {
  /** One line: how the packet gets from one node to the other. */
  summary: string;
  /** The tunnel the packet is wrapped in on this hop, when there is one. */
  tunnel?: Tunnel;
  /** True when the packet passes through the router on its way (it carries the pod routes). */
  viaRouter: boolean;
}

export interface PodNetwork {
  mode: PodNetworkMode;
  /** Mode-specific checks of a topology, before anything is planned (exit 2, file:line). */
  check(t: Topology, at: ProblemAt): void;
  /** Whether the router keeps one of the file's routes: the pod-CIDR routes are routed mode's own. */
  keepsRouterRoute(t: Topology, route: RouterRoute): boolean;
  /** Pure: the devices, routes, neighbours, FDB entries, sysctls and daemons of this mode. */
  plan(t: Topology): PodNetworkPlan;
  /** How a packet crosses from node `from` to node `to`. */
  crossNodeHop(t: Topology, from: Node, to: Node): CrossNodeHop;
}
