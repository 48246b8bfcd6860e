import { labDir } from '../state/store.js';
import type { Node, Router, Topology } from '../topology/schema.js';
import { namespaceName } from '../topology/names.js';
import { birdArgv, birdConfigText, birdPaths, birdProtocolName, type BirdPeer } from './bird.js';
import type { DaemonSpec } from './pod-network/types.js';

/**
 * The lab's BGP speakers: one BIRD per node and per router on a node network, whoever needs
 * them (the pod network's bgp mode announces pod CIDRs, MetalLB's BGP mode LoadBalancer IPs).
 * When both are on, each node's one BIRD carries both: what each wants is a list of prefixes.
 *
 * ASNs (eBGP, Calico's "AS per compute server" design): every router 64512, node i 64513 + i.
 */
export const ROUTER_AS = 64512;
export const nodeAs = (t: Topology, node: Node): number => ROUTER_AS + 1 + t.nodes.findIndex((n) => n.name === node.name);

/** One BGP session: a router's address on a node's network, and that node. */
export interface BgpSession {
  router: Router;
  /** The router's address on the node's network. */
  routerAddress: string;
  /** Its IPv6 address there, in a dual-stack cluster (the next hop of the IPv6 routes it would announce). */
  routerAddress6?: string;
  node: Node;
}

export function bgpSessions(t: Topology): BgpSession[] {
  return t.routers.flatMap((router) =>
    router.interfaces.flatMap((i) => t.nodes.filter((n) => n.network === i.network).map((node) => ({ router, routerAddress: i.address, ...(i.address6 ? { routerAddress6: i.address6 } : {}), node }))),
  );
}

/** What the speakers carry. */
export interface SpeakerWants {
  /** The prefixes a node's BIRD originates now (they change with the lab: a sync rewrites them). */
  announces: (node: Node) => string[];
  /** The IPv6 prefixes it originates (a dual-stack cluster's podCIDR6): the sessions then carry an ipv6 channel too (MP-BGP). */
  announces6?: (node: Node) => string[];
  /** Routers install one multipath route per prefix (MetalLB's ECMP) rather than one best path. */
  mergesPaths: boolean;
}

/** Every BIRD the lab runs for these wants: the routers' (listening, wave 0), then the nodes' (dialling, wave 1). */
export function bgpSpeakers(t: Topology, wants: SpeakerWants): DaemonSpec[] {
  const sessions = bgpSessions(t);
  if (sessions.length === 0) return [];
  const routers = t.routers.filter((r) => sessions.some((s) => s.router.name === r.name));
  const nodes = t.nodes.filter((n) => sessions.some((s) => s.node.name === n.name));
  return [...routers.map((r) => routerDaemon(t, r, sessions, wants)), ...nodes.map((n) => nodeDaemon(t, n, sessions, wants))];
}

/** The ipv6 channel's next hop, when the session carries IPv6 (the speaker's own IPv6 address on that network). */
const nextHop6 = (wants: SpeakerWants, s: BgpSession, address6: string | undefined) => (wants.announces6 && s.routerAddress6 && address6 ? { nextHop6: address6 } : {});

function nodeDaemon(t: Topology, node: Node, sessions: BgpSession[], wants: SpeakerWants): DaemonSpec {
  const peers: BirdPeer[] = sessions
    .filter((s) => s.node.name === node.name)
    .map((s) => ({ name: s.router.name, localAddress: node.address, localAs: nodeAs(t, node), address: s.routerAddress, as: ROUTER_AS, imports: false, exports: true, passive: false, ...nextHop6(wants, s, node.address6) }));
  const announces6 = wants.announces6?.(node) ?? [];
  const config = birdConfigText({ routerId: node.address, announces: wants.announces(node), ...(announces6.length ? { announces6 } : {}), peers, installsLearned: false });
  return daemon(t, node.name, config, 1, { established: peers.map((p) => birdProtocolName(p.name)), routes: [] });
}

function routerDaemon(t: Topology, router: Router, sessions: BgpSession[], wants: SpeakerWants): DaemonSpec {
  const mine = sessions.filter((s) => s.router.name === router.name);
  const peers: BirdPeer[] = mine.map((s) => ({ name: s.node.name, localAddress: s.routerAddress, localAs: ROUTER_AS, address: s.node.address, as: nodeAs(t, s.node), imports: true, exports: false, passive: true, ...nextHop6(wants, s, s.routerAddress6) }));
  const config = birdConfigText({ routerId: mine[0]!.routerAddress, announces: [], peers, installsLearned: true, ...(wants.mergesPaths ? { mergesPaths: true } : {}) });
  const routes = [...new Set(mine.flatMap((s) => [...wants.announces(s.node), ...(s.routerAddress6 ? (wants.announces6?.(s.node) ?? []) : [])]))];
  return daemon(t, router.name, config, 0, { established: peers.map((p) => birdProtocolName(p.name)), routes });
}

function daemon(t: Topology, host: string, config: string, wave: DaemonSpec['wave'], ready: DaemonSpec['ready']): DaemonSpec {
  const paths = birdPaths(labDir(t.lab), host);
  return { host, ns: namespaceName(t.lab, host), name: 'bird', argv: birdArgv(paths), files: [{ path: `bird/${host}.conf`, content: config }], socket: paths.socket, log: paths.log, wave, ready };
}
