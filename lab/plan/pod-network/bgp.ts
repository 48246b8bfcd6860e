import { labDir } from '../../state/store.js';
import type { Node, Router, Topology } from '../../topology/schema.js';
import { namespaceName } from '../../topology/names.js';
import { birdArgv, birdConfigText, birdPaths, birdProtocolName, type BirdPeer } from '../bird.js';
import { emptyPlan, leadsIntoPodRange } from './common.js';
import type { DaemonSpec, DrawnLink, PodNetwork } from './types.js';

/**
 * bgp (pod routes learned by BGP with BIRD, as Calico does): a BIRD in every node announces the
 * node's pod CIDR; a BIRD in every router on a node network peers with each node there and
 * installs what it learns in the kernel (proto bird). Nodes keep sending other nodes' pod
 * traffic to their default route, the router, so they import nothing: the packet crosses the
 * router as in the seeds, only the route it follows is learned, not written in the file.
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
  node: Node;
}

export function bgpSessions(t: Topology): BgpSession[] {
  return t.routers.flatMap((router) =>
    router.interfaces.flatMap((i) => t.nodes.filter((n) => n.network === i.network).map((node) => ({ router, routerAddress: i.address, node }))),
  );
}

/** The routers that speak BGP: those with at least one node on one of their networks. */
const speakingRouters = (t: Topology, sessions: BgpSession[]) => t.routers.filter((r) => sessions.some((s) => s.router.name === r.name));

function nodeDaemon(t: Topology, node: Node, sessions: BgpSession[]): DaemonSpec {
  const peers: BirdPeer[] = sessions
    .filter((s) => s.node.name === node.name)
    .map((s) => ({ name: s.router.name, localAddress: node.address, localAs: nodeAs(t, node), address: s.routerAddress, as: ROUTER_AS, imports: false, exports: true, passive: false }));
  const config = birdConfigText({ routerId: node.address, announces: [node.podCIDR], peers, installsLearned: false });
  return daemon(t, node.name, config, 1, { established: peers.map((p) => birdProtocolName(p.name)), routes: [] });
}

function routerDaemon(t: Topology, router: Router, sessions: BgpSession[]): DaemonSpec {
  const mine = sessions.filter((s) => s.router.name === router.name);
  const peers: BirdPeer[] = mine.map((s) => ({ name: s.node.name, localAddress: s.routerAddress, localAs: ROUTER_AS, address: s.node.address, as: nodeAs(t, s.node), imports: true, exports: false, passive: true }));
  const config = birdConfigText({ routerId: mine[0]!.routerAddress, announces: [], peers, installsLearned: true });
  return daemon(t, router.name, config, 0, { established: peers.map((p) => birdProtocolName(p.name)), routes: mine.map((s) => s.node.podCIDR) });
}

function daemon(t: Topology, host: string, config: string, wave: DaemonSpec['wave'], ready: DaemonSpec['ready']): DaemonSpec {
  const paths = birdPaths(labDir(t.lab), host);
  return { host, ns: namespaceName(t.lab, host), name: 'bird', argv: birdArgv(paths), files: [{ path: `bird/${host}.conf`, content: config }], socket: paths.socket, log: paths.log, wave, ready };
}

/**
 * The pod network's bgp mode. The router keeps none of the file's pod-CIDR routes: it learns
 * them. Every BIRD's configuration is written in the plan, so it is unit-tested and parsed.
 */
export const bgp: PodNetwork = {
  mode: 'bgp',
  // What BIRD could not announce (a pod CIDR outside cluster.podCIDR, overlapping another, or a
  // node without a router on its network to peer with) the topology's own checks refuse already.
  check() {},
  keepsRouterRoute: (t, route) => !leadsIntoPodRange(t, route),
  plan(t) {
    const sessions = bgpSessions(t);
    const routers = speakingRouters(t, sessions);
    const daemons = sessions.length === 0 ? [] : [...routers.map((r) => routerDaemon(t, r, sessions)), ...t.nodes.filter((n) => sessions.some((s) => s.node.name === n.name)).map((n) => nodeDaemon(t, n, sessions))];
    const drawn: DrawnLink[] = sessions.map((s) => ({ a: s.router.name, b: s.node.name, kind: 'session', label: `BGP AS${ROUTER_AS} ↔ AS${nodeAs(t, s.node)}` }));
    return { ...emptyPlan(t, 'bgp'), daemons, drawn };
  },
  crossNodeHop: (t, from, to) => {
    const router = bgpSessions(t).find((s) => s.node.name === from.name)?.router.name ?? 'the router';
    return { summary: `${from.name} sends it to ${router}, whose route for ${to.podCIDR} via ${to.address} was learned by BGP from ${to.name}'s BIRD (proto bird)`, viaRouter: true };
  },
};
