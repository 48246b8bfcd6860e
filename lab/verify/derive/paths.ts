import { HOST_IFNAME } from '../../topology/names.js';
import { joinHostPort } from '../../util/ipv6.js';
import type { Node, Topology } from '../../topology/schema.js';
import { nftNameBase, nftServiceKey } from '../../plan/kube-proxy/hash.js';
import { ANY_ENDPOINT, type Step, type Traffic, type WalkthroughPath } from '../walkthrough.js';
import { excludedPods, fateOf, masqueradeSource, sourceAllowed, type Answerer, type Fate } from './semantics.js';
import { portLabel, type WayIn } from './ways-in.js';

/**
 * The paths of one way in, each with the steps kube-proxy's semantics predict, proven by the
 * same evidence a written walkthrough uses: captures at the sender, the pod and the other nodes,
 * the translating node's conntrack entry and DNAT, the pod's own answer. Pure.
 */
export interface PathContext {
  t: Topology;
  /** Pods whose eth0 is watched (a large world watches none: one tcpdump each). */
  watchedPods: Set<string>;
  /** Drop and reject rules per "node table chain jump": how many kube-proxy writes there (a counter proves one only if it is alone). */
  ruleCount: Map<string, number>;
}

const at = (host: string) => `${host}:${HOST_IFNAME}`;
const step = (n: string, title: string, where: string | undefined, expect: Step['expect']): Step => ({ step: n, title, ...(where ? { at: where } : {}), expect });

/** The fate of a way in on one of its nodes: the firewall first (loadBalancerSourceRanges), then the endpoints. */
export function wayFate(t: Topology, way: WayIn, node: Node): Fate {
  const fate = fateOf(t, way.service, way.port, way.entry, node.name);
  if (way.entry === 'loadBalancer' && fate.kind === 'answered' && !sourceAllowed(way.service, way.fromAddress)) {
    return { kind: 'drop', why: `${way.fromAddress} is outside loadBalancerSourceRanges ${way.service.loadBalancerSourceRanges.join(', ')}`, firewall: true };
  }
  return fate;
}

export function pathsOfWay(c: PathContext, way: WayIn): WalkthroughPath[] {
  const name = `${portLabel(way.service, way.port)} ${way.entry} from ${way.from}${way.source ? ` (${way.source})` : ''} to ${way.to}`;
  const fates = way.nodes.map((n) => ({ node: n, fate: wayFate(c.t, way, n) }));
  const answering = new Set(fates.flatMap((f) => (f.fate.kind === 'answered' ? f.fate.endpoints.map((e) => e.pod) : [])));
  const affinity = way.service.sessionAffinity === 'ClientIP';
  const paths: WalkthroughPath[] = [];
  for (const { node, fate } of fates) {
    const via = way.nodes.length > 1 && way.spreadByPorts ? node : undefined;
    if (way.nodes.length > 1 && !way.spreadByPorts && paths.length > 0) break; // one node takes all of this client's connections: judged once
    if (fate.kind !== 'answered') paths.push(droppedPath(c, way, node, fate, `${name}${via ? ` via ${node.name}` : ''}`));
    else if (affinity || (way.nodes.length > 1 && !way.spreadByPorts)) paths.push(anyEndpointPath(c, way, via ?? node, affinity, via !== undefined, `${name}${via ? ` via ${node.name}` : ''}`));
    else for (const e of fate.endpoints) paths.push(answeredPath(c, way, node, e, `${name}${via ? ` via ${node.name}` : ''} -> ${e.pod}`));
  }
  const excluded = excludedPods(c.t, way.service, answering);
  if (answering.size > 0 && excluded.length > 0 && paths[0]) {
    paths[0].steps.push(step('7', `No connection reaches ${excluded.join(', ')}: not among the endpoints that may answer here`, undefined, { share: { min: 0, max: 0, endpoints: excluded } }));
  }
  return paths.map((p) => ({ ...p, traffic: trafficOf(way, paths.length, answering.size, p.outcome === 'no-answer', affinity) }));
}

function trafficOf(way: WayIn, paths: number, endpoints: number, dropped: boolean, affinity: boolean): Traffic {
  const base = { from: way.from, to: way.to, ...(way.source ? { source: way.source } : {}) };
  if (dropped && paths === 1) return { ...base, requests: 2, maxRequests: 2, timeout: 0.5 };
  if (affinity) return { ...base, requests: 10, maxRequests: 10, timeout: 1 };
  // Enough that every path is seen (endpoints are picked at random) and an excluded pod would show up.
  return { ...base, requests: Math.min(1000, Math.max(6, 3 * endpoints)), maxRequests: Math.min(1000, 12 + 10 * paths), timeout: dropped ? 0.5 : 1 };
}

const viaWords = (e: Answerer, node: Node) => (e.node === node.name ? `on ${node.name} itself` : `on ${e.node}`);

function answeredPath(c: PathContext, way: WayIn, node: Node, e: Answerer, name: string): WalkthroughPath {
  const masq = masqueradeSource(c.t, way.service, way.entry, node, e, way.from);
  const seenAs = masq ? joinHostPort(masq, '*') : '$client';
  const steps: Step[] = [
    step('1', `${way.from} opens a connection to ${way.to}`, at(way.from), { packet: { src: '$client', dst: way.to, flags: 'S' } }),
    step('2', `${node.name} translates it to ${e.pod} (${e.address})${masq ? `, masqueraded to ${masq}` : ', source kept'}`, node.name, {
      conntrack: { original: { src: '$client', dst: way.to }, reply: { src: e.address, dst: masq ? joinHostPort(masq, '*') : '$client' } },
    }),
    step('2', `kube-proxy's DNAT to ${e.address} on ${node.name} counted it`, node.name, { dnatRule: { to: e.address } }),
  ];
  if (c.watchedPods.has(e.pod)) steps.push(step('3', `${e.pod} ${viaWords(e, node)} receives it from ${masq ?? 'the client itself'}`, at(e.pod), { packet: { src: seenAs, dst: e.address, flags: 'S' } }));
  steps.push(step('3', `${e.pod}'s answer names the source it saw`, e.pod, { answer: { client: seenAs } }));
  if (c.watchedPods.has(e.pod)) steps.push(step('4', `${e.pod} replies to that source`, at(e.pod), { packet: { src: e.address, dst: '$snat', flags: 'S.' } }));
  for (const other of c.t.nodes) {
    if (other.name !== node.name && other.name !== e.node) steps.push(step('5', `Nothing of this connection reaches ${other.name}`, at(other.name), { noPacket: true }));
  }
  steps.push(step('6', `conntrack reverses the translation: ${way.from} sees the reply come from ${way.to}`, at(way.from), { packet: { src: way.to, dst: '$client', flags: 'S.' } }));
  return { name, summary: `kube-proxy on ${node.name} may pick ${e.pod} ${viaWords(e, node)}`, endpoint: e.pod, outcome: 'answered', via: node.name, steps };
}

/** sessionAffinity (which pod the client sticks to is kube-proxy's random pick), or an ECMP route that sends this client to one unknown node. */
function anyEndpointPath(c: PathContext, way: WayIn, node: Node, affinity: boolean, withVia: boolean, name: string): WalkthroughPath {
  const known = way.nodes.length === 1 || withVia;
  const steps: Step[] = [step('1', `${way.from} opens connections to ${way.to}`, at(way.from), { packet: { src: '$client', dst: way.to, flags: 'S' } })];
  if (known) {
    steps.push(step('2', `${node.name} translates them to an endpoint`, node.name, { conntrack: { original: { src: '$client', dst: way.to }, reply: { src: '$pod', dst: '$snat' } } }));
    steps.push(step('2', `kube-proxy's DNAT on ${node.name} counted it`, node.name, { dnatRule: { to: '$pod' } }));
    if (affinity) steps.push(step('2', `${node.name} remembers the client for sessionAffinity: ClientIP`, node.name, { recent: { client: '$client.ip', endpoint: '$pod' } }));
  }
  if (affinity && way.nodes.length === 1) steps.push(step('3', 'Every connection of this client reaches one and the same pod', undefined, { sameEndpoint: true }));
  steps.push(step('6', `conntrack reverses the translation: ${way.from} sees the reply come from ${way.to}`, at(way.from), { packet: { src: way.to, dst: '$client', flags: 'S.' } }));
  return { name, summary: affinity ? 'sessionAffinity: ClientIP sticks the client to one pod' : 'the router sends this client to one of the nodes', endpoint: ANY_ENDPOINT, outcome: 'answered', ...(known ? { via: node.name } : {}), steps };
}

function droppedPath(c: PathContext, way: WayIn, node: Node, fate: Exclude<Fate, { kind: 'answered' }>, name: string): WalkthroughPath {
  const steps: Step[] = [step('1', `${way.from} opens a connection to ${way.to}`, at(way.from), { packet: { src: '$client', dst: way.to, flags: 'S' } })];
  const rule = dropRule(way, fate);
  const key = `${node.name} ${rule.table} ${rule.chain} ${rule.jump}`;
  if (way.nodes.length === 1 && (c.ruleCount.get(key) ?? 0) === 1) {
    steps.push(step('2', `${node.name} ${fate.kind === 'reject' ? 'rejects' : 'drops'} it: ${fate.why}`, node.name, { rule }));
  }
  for (const pod of c.t.pods.filter((p) => c.watchedPods.has(p.name) && excludedPods(c.t, way.service, new Set()).includes(p.name))) {
    steps.push(step('3', `Nothing of it reaches ${pod.name}`, at(pod.name), { noPacket: true }));
  }
  steps.push(step('4', `No answer comes back (${fate.why})`, undefined, { noAnswer: true }));
  return { name, summary: fate.why, outcome: 'no-answer', steps };
}

/** The filter rule kube-proxy writes for a connection it refuses, and its nftables counterpart. */
export function dropRule(way: Pick<WayIn, 'service' | 'port' | 'entry'>, fate: Exclude<Fate, { kind: 'answered' }>) {
  const verdict = fate.kind === 'reject' ? 'goto reject-chain' : 'drop';
  if (fate.firewall) {
    const key = nftServiceKey(way.service.namespace, way.service.name, way.port.protocol, way.port.name);
    return { table: 'filter' as const, chain: 'KUBE-PROXY-FIREWALL', jump: 'DROP', nftables: { map: 'firewall-ips', verdict: `goto firewall-${nftNameBase(key)}` } };
  }
  const jump = fate.kind === 'reject' ? 'REJECT' : 'DROP';
  if (way.entry === 'clusterIP') return { table: 'filter' as const, chain: 'KUBE-SERVICES', jump, nftables: { map: 'no-endpoint-services', verdict } };
  const map = way.entry === 'nodePort' ? 'no-endpoint-nodeports' : 'no-endpoint-services';
  return { table: 'filter' as const, chain: 'KUBE-EXTERNAL-SERVICES', jump, nftables: { map, verdict } };
}
