import type { Node, Topology } from '../topology/schema.js';
import { networkBridgeName, podVethName } from '../topology/names.js';
import { inPrefix, splitHostPort } from '../util/ipv6.js';
import type { PathResult } from '../verify/judges.js';
import type { RuleHit, Translation } from '../verify/nat-rules.js';
import type { HopDrop } from './drop.js';
import type { Hop, PathHops } from './hops.js';

/**
 * The player's data: each path's hops (request, then reply) with where each was seen (host,
 * interface, in or out), what the drawing lights for it, what rewrote it and the conntrack entry
 * at the node that did. Pure: the topology, the judged path, its captured hops and the light
 * trace in.
 */

export type Way = 'in' | 'out' | 'across';

export interface HopCause {
  by: 'rules' | 'conntrack';
  node: string;
  text: string;
  rules: RuleHit[];
}

export interface PlayerHop {
  direction: 'request' | 'reply';
  point: string;
  host: string;
  ifname: string;
  /** across: switched by a router's bridge between two hosts of its network, not routed. */
  way: Way;
  src: string;
  dst: string;
  flags: string;
  outer?: { text: string; src: string; dst: string };
  changed: ('src' | 'dst')[];
  cause?: HopCause;
  /** The conntrack entry, at the node that translated the connection. */
  conntrack?: string;
  drop?: HopDrop;
  /** What the drawing lights for this hop: the veth link (data-link) or tunnel (data-overlay) it is on. */
  link?: string;
  overlay?: string;
}

export interface PlayerPath {
  name: string;
  summary: string;
  flow: string;
  hops: PlayerHop[];
  /** Per step of the path, in order: the hop that proves it (-1: none). */
  stepHops: number[];
}

const ipOf = (addr: string) => splitHostPort(addr).ip;
const inCidr = inPrefix;
/** A dual-stack host has two addresses, a node two pod ranges, a network two subnets: either may be the packet's. */
const hasAddress = (h: { address: string; address6?: string }, ip: string) => h.address === ip || h.address6 === ip;
const inPodCidrs = (n: Node, ip: string) => inCidr(n.podCIDR, ip) || inCidr(n.podCIDR6, ip);
const inSubnet = (t: Topology, net: string | undefined, ip: string) => {
  const n = t.networks.find((x) => x.name === net);
  return inCidr(n?.subnet, ip) || inCidr(n?.subnet6, ip);
};

/** Does a packet to `dst`, seen on host:ifname, leave by that interface (else it arrives by it)? */
export function leaves(t: Topology, host: string, ifname: string, dst: string): boolean {
  return wayAt(t, host, ifname, '', dst) !== 'in';
}

/** How a packet from `src` to `dst`, seen on host:ifname, passes that interface. */
export function wayAt(t: Topology, host: string, ifname: string, src: string, dst: string): Way {
  const router = t.routers.find((r) => r.name === host);
  if (router) {
    const net = router.interfaces.find((i) => networkBridgeName(i.network) === ifname)?.network;
    const fromHere = inSubnet(t, net, src) || t.nodes.some((n) => n.network === net && inPodCidrs(n, src));
    if (fromHere && inSubnet(t, net, dst)) return 'across';
  }
  return routesOut(t, host, ifname, dst) ? 'out' : 'in';
}

function routesOut(t: Topology, host: string, ifname: string, dst: string): boolean {
  const node = t.nodes.find((n) => n.name === host);
  if (node) {
    const own = hasAddress(node, dst) || inPodCidrs(node, dst);
    if (ifname === node.bridge || ifname.startsWith('veth-')) return inPodCidrs(node, dst);
    return !own;
  }
  const router = t.routers.find((r) => r.name === host);
  if (router) {
    const net = router.interfaces.find((i) => networkBridgeName(i.network) === ifname)?.network;
    if (inSubnet(t, net, dst)) return true;
    if (t.nodes.some((n) => n.network === net && inPodCidrs(n, dst))) return true;
    return router.routes.some((r) => inCidr(r.to, dst) && [r.via].flat().some((v) => inSubnet(t, net, v)));
  }
  const self = [...t.clients, ...t.pods].find((h) => h.name === host);
  return !self || !hasAddress(self, dst);
}

/** The drawing's element a hop travels on: the veth link by its plugged-in end, or the tunnel between two nodes. */
function drawnAt(t: Topology, hops: { host: string; ifname: string; way: Way; src: string; dst: string; outer?: unknown }[], i: number): { link?: string; overlay?: string } {
  const h = hops[i]!;
  const neighbour = () => {
    const step = h.way === 'in' ? -1 : 1;
    for (let j = i + step; j >= 0 && j < hops.length; j += step) if (hops[j]!.host !== h.host) return hops[j]!.host;
    return undefined;
  };
  const node = t.nodes.find((n) => n.name === h.host);
  const names = t.nodes.map((n) => n.name);
  // The tunnel's other end: the nearest node the other way along the path (the router between them forwards the datagram).
  const otherEnd = (from: string, step: number) => {
    for (let j = i + step; j >= 0 && j < hops.length; j += step) if (hops[j]!.host !== from && names.includes(hops[j]!.host)) return hops[j]!.host;
    return undefined;
  };
  const tunnelOf = (a: string, b: string | undefined) => (b ? [a, b].sort((x, y) => names.indexOf(x) - names.indexOf(y)).join('-') : undefined);
  const tunnel = () => tunnelOf(h.host, otherEnd(h.host, h.way === 'in' ? -1 : 1));
  if (node) {
    const podIp = ipOf(h.way === 'in' ? h.src : h.dst);
    if (h.ifname === node.bridge) {
      const pod = t.pods.find((p) => hasAddress(p, podIp));
      return pod ? { link: `${pod.name}:eth0` } : {};
    }
    if (h.ifname.startsWith('veth-')) {
      const pod = t.pods.find((p) => podVethName(p.name) === h.ifname);
      return pod ? { link: `${pod.name}:eth0` } : {};
    }
    if (h.ifname === 'eth0') return { link: `${h.host}:eth0`, ...(h.outer ? { overlay: tunnel() } : {}) };
    return { overlay: tunnel() };
  }
  const router = t.routers.find((r) => r.name === h.host);
  if (router) {
    const net = router.interfaces.find((x) => networkBridgeName(x.network) === h.ifname)?.network;
    const onNet = [...t.clients, ...t.nodes].filter((x) => x.network === net);
    const other = neighbour();
    const peer = onNet.find((x) => x.name === other) ?? onNet.find((x) => hasAddress(x, ipOf(h.way === 'in' ? h.src : h.dst)));
    // Inside a tunnel between two nodes: the router forwards the datagram, the tunnel is lit too.
    const before = otherEnd(h.host, -1);
    const overlay = h.outer && before ? tunnelOf(before, otherEnd(h.host, 1)) : undefined;
    return { ...(peer ? { link: `${peer.name}:eth0` } : {}), ...(overlay ? { overlay } : {}) };
  }
  return { link: `${h.host}:${h.ifname}` };
}

function causeOf(h: Hop, direction: 'request' | 'reply', node: string, tr: Translation | undefined, before: Hop): HopCause {
  if (direction === 'reply') return { by: 'conntrack', node, text: `conntrack on ${node} undoes the translation: ${before.src} > ${before.dst} becomes ${h.src} > ${h.dst}`, rules: [] };
  const what = [h.changed.includes('dst') ? `DNAT ${before.dst} → ${h.dst}` : '', h.changed.includes('src') ? `SNAT (MASQUERADE) ${before.src} → ${h.src}` : ''].filter(Boolean).join(', ');
  const rules = [...(h.changed.includes('dst') ? (tr?.dnat ?? []) : []), ...(h.changed.includes('src') ? (tr?.snat ?? []) : [])];
  return { by: 'rules', node, text: `${what}, by kube-proxy's rules on ${node}`, rules };
}

/** The hop a step is proved at: its observation point (the reply's, for a step about the reply), or its host's translating hop. */
function hopOfStep(hops: PlayerHop[], at: string, aboutReply: boolean): number {
  const exact = hops.map((h, i) => [h, i] as const).filter(([h]) => h.point === at);
  if (exact.length) return (exact.find(([h]) => (h.direction === 'reply') === aboutReply) ?? exact[0]!)[1];
  const host = hops.map((h, i) => [h, i] as const).filter(([h]) => h.host === at);
  return (host.find(([h]) => h.cause) ?? host[0])?.[1] ?? -1;
}

export function playerPath(t: Topology, path: PathResult, hops: PathHops | undefined, tr: Translation | undefined, drops: Record<number, HopDrop> = {}): PlayerPath {
  const node = tr?.node ?? path.flow?.conntrack?.node;
  const conntrack = tr?.conntrack ?? path.flow?.conntrack?.entry.text;
  const seen = (['request', 'reply'] as const).flatMap((direction) =>
    (hops?.[direction] ?? []).map((h, i, all) => {
      const [host, ifname] = h.point.split(':') as [string, string];
      const way = wayAt(t, host, ifname, ipOf(h.outerSrc ?? h.src), ipOf(h.outerDst ?? h.dst));
      return { direction, h, before: all[i - 1], host, ifname, way, src: h.src, dst: h.dst, outer: h.outer };
    }),
  );
  const out: PlayerHop[] = seen.map((s, i) => ({
    direction: s.direction,
    point: s.h.point,
    host: s.host,
    ifname: s.ifname,
    way: s.way,
    src: s.h.src,
    dst: s.h.dst,
    flags: s.h.flags,
    ...(s.h.outer ? { outer: { text: s.h.outer, src: s.h.outerSrc ?? '', dst: s.h.outerDst ?? '' } } : {}),
    changed: s.h.changed,
    ...(s.h.changed.length && s.before ? { cause: causeOf(s.h, s.direction, node ?? s.host, tr, s.before) } : {}),
    ...(conntrack && s.host === node ? { conntrack } : {}),
    ...(drops[i] ? { drop: drops[i] } : {}),
    ...drawnAt(t, seen, i),
  }));
  const flow = path.flow ? `${path.flow.client} > ${path.flow.target}${path.flow.answer ? `, answered by ${path.flow.answer.pod}` : ', no answer'}` : 'no request of this path was seen';
  return { name: path.name, summary: path.summary, flow, hops: out, stepHops: path.steps.map((s) => hopOfStep(out, s.at, /reply|back|answer/i.test(s.title))) };
}
