import { mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { captureFile, withCaptures, type ObservationPoint } from '../capture/tcpdump.js';
import { parsePcap, type TcpPacket } from '../capture/pcap.js';
import { parseArpPcap, type ArpPacket } from '../capture/arp.js';
import { readTakeover, takeoverPackets, type TakeoverRecord } from '../capture/takeover.js';
import type { ConntrackEntry } from '../kernel/conntrack.js';
import { nextSourcePort, portsInUse } from '../kernel/ports.js';
import {
  affinitySetsOf,
  countersByJump,
  dnatCountersOf,
  nftDnatChainsOf,
  nftMapElementsOf,
  readMacs,
  readNftObjects,
  readNftText,
  readRecentLists,
  readRoute,
  readRouteSource,
  readRuleCounters,
  readTranslatedConnections,
  type NftMapElement,
  type RecentList,
  type RuleCounter,
} from '../kernel/readers.js';
import { podNetworkOf } from '../plan/pod-network/index.js';
import { readBgpSessions } from '../kernel/bird.js';
import type { PodNetworkMode, ProxyMode, Topology } from '../topology/schema.js';
import { namespaceName } from '../topology/names.js';
import { isDualStack } from '../topology/family.js';
import { addressMatches, flowVariables, resolvePattern, type Flow } from './flows.js';
import { flowsOfPaths, groupSatisfied, locateFlow, trafficGroups, type TrafficGroup } from './paths.js';
import { sendRequest } from './traffic.js';
import { sendUdpRequest } from './udp-traffic.js';
import { conntrackOf, translatedWithKept, withKept } from './udp-conntrack.js';
import { readAffinityState, waitForAffinityExpiry } from '../kernel/affinity.js';
import type { AffinityWaitEvidence } from './affinity-expiry.js';
import { trafficSender, type Step, type Walkthrough } from './walkthrough.js';
import { writeRunFile } from '../util/run-file.js';
import { log } from '../log.js';
import { run } from '../kernel/exec.js';
import { readRulesBefore, readTranslations } from './light-trace.js';
import type { Translation } from './nat-rules.js';
import { noDropTrace, openVerifyDropTrace, withDroppingRules, type SeenDrop, type VerifyDropTrace } from './drops-seen.js';

/**
 * Everything a verify run learned from the kernel, as one plain object: judging a walkthrough
 * against it runs no command, so a saved run (evidence.json beside its pcaps) can be judged again.
 */
export interface Evidence {
  /** Packets per observation point (host:ifname), read from the pcaps. */
  packets: Record<string, TcpPacket[]>;
  /** The pcap file of each observation point. */
  captures: Record<string, string>;
  /** Each node's conntrack table after the traffic. */
  conntrack: Record<string, ConntrackEntry[]>;
  /** Rule counters per node, keyed "table chain jump", before and after the traffic. */
  countersBefore: Record<string, Record<string, RuleCounter>>;
  countersAfter: Record<string, Record<string, RuleCounter>>;
  /** KUBE-SEP DNAT counters per node, keyed by endpoint, before and after. */
  dnatBefore: Record<string, Record<string, number>>;
  dnatAfter: Record<string, Record<string, number>>;
  /** node → address → the device its route leaves by ('' when there is none). */
  routes: Record<string, Record<string, string>>;
  /** host → address → the most specific route holding it: prefix, gateway, protocol (for route steps naming via or proto). */
  routeSources?: Record<string, Record<string, { dst: string; via: string; proto: string }>>;
  /** host → the BGP sessions its BIRD reports (for bgpSession steps; podNetwork mode bgp). */
  bgpSessions?: Record<string, { peer: string; state: string; info: string }[]>;
  /** sessionAffinity's recent lists per node (nftables mode: its affinity sets). */
  recent: Record<string, RecentList[]>;
  flows: Flow[];
  /** Per path's connection (by its client ip:port): the rules that translated it, for the player (absent in older runs). */
  translations?: Record<string, Translation>;
  /** Per request that got no answer (by its client ip:port): where the kernel dropped it and why (absent in older runs). */
  drops?: Record<string, SeenDrop[]>;
  /** Why the run has no drop reasons, when the kernel could not give them. */
  dropsUnavailable?: string;
  /** Per observation point whose capture went wrong: what happened (it ended early, or lost packets). */
  captureProblems?: Record<string, string>;
  /** The observation points whose tcpdump ended before the traffic did: what they did not see proves nothing. */
  capturesEnded?: string[];
  /** The proxy mode the lab ran in (absent in runs saved before nftables mode: iptables). */
  mode?: ProxyMode;
  /** The pod network mode the lab ran in (absent in runs saved before it existed: routed). */
  podNetwork?: PodNetworkMode;
  /** The MACs of each host named by a frame step: who a captured frame was addressed to. */
  macs?: Record<string, string[]>;
  /** ARP per observation point, for arp steps (the captures then take ARP too). */
  arp?: Record<string, ArpPacket[]>;
  /** The neighbour entries the lab deleted before the traffic, so that their hosts had to ask (arp steps). */
  arpForgotten?: { host: string; ip: string }[];
  /** The lab's last layer-2 takeover, for gratuitousArp steps: its record and the ARP its sync captured (pcaps copied beside the evidence). */
  takeover?: TakeoverRecord & { packets: Record<string, ArpPacket[]> };
  /** Per traffic group sent with afterAffinityExpiry: the wait for the kernel to forget its sender, and after. */
  affinityWaits?: Record<string, AffinityWaitEvidence>;
  /**
   * nftables mode, which has no rule counters: per node, the endpoint chains by the address they
   * DNAT to, the verdict-map elements, and the connections conntrack holds translated to each
   * endpoint before and after the traffic.
   */
  nft?: {
    dnatChains: Record<string, Record<string, string[]>>;
    maps: Record<string, NftMapElement[]>;
    translatedBefore: Record<string, Record<string, string[]>>;
    translatedAfter: Record<string, Record<string, string[]>>;
  };
}

const HTTP_RESPONSE_DEADLINE_MS = 3000;

/**
 * httpResponse steps judge packets of connections the lab does not make (a load balancer's
 * health checks, every 200 ms): before the captures stop, read each such step's pcap until it
 * holds an HTTP response from src to dst (any status: the judge decides), or the deadline passes.
 */
async function awaitHttpResponses(w: Walkthrough, points: ObservationPoint[], runDir: string): Promise<void> {
  const wanted = w.paths.flatMap((p) => p.steps.flatMap((s) => (s.expect?.httpResponse ? [{ at: s.at ?? '', ...s.expect.httpResponse }] : [])));
  const deadline = performance.now() + HTTP_RESPONSE_DEADLINE_MS;
  for (const want of wanted) {
    const point = points.find((p) => p.id === want.at);
    const src = resolvePattern(want.src, {});
    const dst = resolvePattern(want.dst, {});
    if (!point || !src || !dst) continue;
    const seen = () => {
      try {
        return parsePcap(readFileSync(captureFile(point, runDir))).some((p) => addressMatches(src, p.src, p.sport) && addressMatches(dst, p.dst, p.dport) && p.payload.startsWith('HTTP/'));
      } catch {
        return false; // a record half written: read again
      }
    };
    while (!seen() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The steps of one check kind. */
const stepsWith = (w: Walkthrough, kind: 'arp' | 'gratuitousArp') => w.paths.flatMap((p) => p.steps.filter((s) => s.expect?.[kind]));

/** The hosts whose MACs a step names: a frame's receiver, ARP's asker and answerer. */
const macHostsOf = (e: Walkthrough['paths'][number]['steps'][number]['expect']): string[] => [
  ...(e?.frame ? [e.frame.to] : []),
  ...(e?.arp ? [e.arp.asker, e.arp.answeredBy] : []),
  ...(e?.gratuitousArp ? [e.gratuitousArp.from, e.gratuitousArp.moves] : []),
];

/** Delete a host's neighbour entry for an IP (in the lab's namespace only): its next packet there makes it ask. */
async function forgetNeighbour(ns: string, ip: string): Promise<void> {
  await run('ip', ['-n', ns, 'neigh', 'flush', 'to', ip], { allowFailure: true });
}

function takeoverOf(lab: string, runDir: string): Pick<Evidence, 'takeover'> {
  const takeover = readTakeover(lab, runDir);
  return takeover ? { takeover } : {};
}

/** Hosts whose BIRD a bgpSession step asks about. */
const hostsWithSessions = (w: Walkthrough) => [...new Set(w.paths.flatMap((p) => p.steps.filter((s) => s.expect?.bgpSession).map((s) => s.at!)))];

/** Nodes named by steps of one check kind. */
const nodesWith = (w: Walkthrough, kind: 'dnatRule' | 'rule' | 'recent') => [...new Set(w.paths.flatMap((p) => p.steps.filter((s) => s.expect?.[kind]).map((s) => s.at!)))];

async function perNode<T>(nodes: string[], read: (node: string) => Promise<T>): Promise<Record<string, T>> {
  return Object.fromEntries(await Promise.all(nodes.map(async (n) => [n, await read(n)] as const)));
}

/** What sending a walkthrough's traffic needs: the lab, its proxy mode, and what the kernel said before it. */
interface Sending {
  t: Topology;
  ns: (host: string) => string;
  mode: ProxyMode;
  /** Every node's conntrack table, read now. */
  readAllConntrack: () => Promise<Record<string, ConntrackEntry[]>>;
  /** iptables mode: per node traffic waits on, its affinity rules' hits when the run started. */
  hitsAtRunStart: Record<string, number>;
  /** Marks each request's window in the drop trace. */
  drops: VerifyDropTrace;
  /** Each UDP exchange's conntrack entry as found right after it (udp-conntrack.ts): it may expire before the end. */
  kept: Record<string, ConntrackEntry[]>[];
  onProgress?: (text: string) => void;
}

/**
 * The captures' tcpdump filter: TCP, and UDP when the walkthrough sends it; the pod network's
 * tunnel, if any (its datagrams carry the flows between nodes); ARP for `arp` steps and ICMPv6
 * for IPv6 ones (NDP's solicitations and advertisements). Undefined: tcpdump's default, TCP alone.
 */
function captureFilter(t: Topology, arpSteps: Step[], udp: boolean): string[] | undefined {
  const tunnel = podNetworkOf(t).plan(t).tunnel;
  const baseFilter = udp ? ['tcp', 'or', 'udp'] : tunnel ? ['tcp', 'or', 'udp', 'port', String(tunnel.port)] : ['tcp'];
  const ndp = arpSteps.some((s) => s.expect!.arp!.ip.includes(':')) ? ['or', 'icmp6'] : [];
  return arpSteps.length > 0 ? [...baseFilter, 'or', 'arp', ...ndp] : tunnel || udp ? baseFilter : undefined;
}

/**
 * Send the walkthrough's traffic with tcpdump listening at every observation point, then read
 * conntrack, rule counters, routes and recent lists: everything the judges need.
 */
export async function gatherEvidence(t: Topology, w: Walkthrough, runDir: string, onProgress?: (text: string) => void): Promise<Evidence> {
  mkdirSync(runDir, { recursive: true });
  const ns = (host: string) => namespaceName(t.lab, host);
  const points: ObservationPoint[] = w.observe.map((id) => {
    const [host, ifname] = id.split(':') as [string, string];
    return { id, host, ifname, ns: ns(host) };
  });
  const mode = t.kubeProxy.mode;
  const nft = mode === 'nftables';
  const counterNodes = nft ? [] : [...new Set([...nodesWith(w, 'dnatRule'), ...nodesWith(w, 'rule')])];
  // A dual-stack node's IPv6 DNAT rules count in ip6tables: their endpoints are "[ip]:port", apart from IPv4's.
  const dual = isDualStack(t);
  const readCounters = async () => perNode(counterNodes, async (n) => ({ v4: await readRuleCounters(ns(n)), v6: dual ? await readRuleCounters(ns(n), true) : [] }));
  const before = await readCounters();
  const lightStarted = performance.now();
  const rulesBefore = await readRulesBefore(t, ns);
  let lightMs = performance.now() - lightStarted;
  const readTranslated = () => perNode(nft ? nodesWith(w, 'dnatRule') : [], (n) => readTranslatedConnections(ns(n)));
  const translatedBefore = await readTranslated();
  const udp = trafficGroups(w).some((g) => g.traffic.protocol === 'UDP');
  const readAllConntrack = () => perNode(t.nodes.map((n) => n.name), (n) => conntrackOf(ns(n), udp));

  // sessionAffinity timeouts: the affinity rules' counters at the start, for the nodes traffic waits on.
  const waitNodes = [...new Set(trafficGroups(w).flatMap((g) => (g.traffic.afterAffinityExpiry ? [g.traffic.afterAffinityExpiry] : [])))];
  const hitsAtRunStart = await perNode(nft ? [] : waitNodes, async (n) => (await readAffinityState(ns(n), mode)).affinityHits ?? 0);
  const sending: Sending = { t, ns, mode, readAllConntrack, hitsAtRunStart, drops: noDropTrace, kept: [], onProgress };

  const arpSteps = stepsWith(w, 'arp');
  const filter = captureFilter(t, arpSteps, udp);
  const arpForgotten = [...new Map(arpSteps.map((s) => [`${s.expect!.arp!.asker} ${s.expect!.arp!.ip}`, { host: s.expect!.arp!.asker, ip: s.expect!.arp!.ip }])).values()];
  onProgress?.(`capturing on ${points.length} interfaces`);
  const affinityWaits: Record<string, AffinityWaitEvidence> = {};
  let dropsUnavailable: string | undefined;
  let kernelDrops: Record<string, Omit<SeenDrop, 'rule'>[]> = {};
  const { result: flows, packets, files, problems, ended } = await withCaptures(points, runDir, async () => {
    const all: Flow[] = [];
    // An arp step proves the who-has and its answer: the asker forgets the IP first, so its first packet asks.
    await Promise.all(arpForgotten.map((f) => forgetNeighbour(ns(f.host), f.ip)));
    // The drop tracepoint is on only while the traffic is sent (its own tracefs instance, as lab trace's).
    const dropTrace = openVerifyDropTrace(t);
    sending.drops = dropTrace;
    dropsUnavailable = dropTrace.unavailable;
    try {
      for (const g of trafficGroups(w)) {
        const waited = await sendGroup(sending, g, all);
        if (waited) affinityWaits[g.key] = waited;
      }
      kernelDrops = dropTrace.finish(all, ns);
    } finally {
      dropTrace.close();
    }
    await awaitHttpResponses(w, points, runDir);
    return all;
  }, filter);

  const readAffinity = (n: string) => (nft ? readNftObjects(ns(n)).then(affinitySetsOf) : readRecentLists(ns(n)));
  const frameHosts = [...new Set(w.paths.flatMap((p) => p.steps.flatMap((s) => macHostsOf(s.expect))))];
  const gratuitous = stepsWith(w, 'gratuitousArp').length > 0;
  const [finalConntrack, after, recent, finalTranslated, macs] = await Promise.all([readAllConntrack(), readCounters(), perNode(nodesWith(w, 'recent'), readAffinity), readTranslated(), perNode(frameHosts, (h) => readMacs(ns(h)))]);
  const conntrack = withKept(finalConntrack, sending.kept);
  const translatedAfter = translatedWithKept(finalTranslated, sending.kept);
  for (const flow of flows) locateFlow(flow, conntrack);
  const { routes, routeSources } = await readRoutesOfSteps(w, flows, ns);
  const bgpSessions = await perNode(hostsWithSessions(w), (h) => readBgpSessions(t.lab, h));
  const translatedAt = performance.now();
  const translations = await readTranslations(t, w, flows, conntrack, ns, rulesBefore);
  const drops = await withDroppingRules(t, kernelDrops, flows, ns, rulesBefore);
  lightMs += performance.now() - translatedAt;
  log.debug({ ms: Math.round(lightMs) }, 'the player\'s light trace: rules read before and after');

  const map = <T, U>(r: Record<string, T>, f: (x: T) => U) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, f(v)]));
  const nftEvidence = nft ? { ...(await readNftRules(w, ns, dual)), translatedBefore, translatedAfter } : undefined;
  return {
    mode,
    podNetwork: t.podNetwork.mode,
    ...(frameHosts.length > 0 ? { macs } : {}),
    ...(arpSteps.length > 0 ? { arp: Object.fromEntries([...files].map(([id, f]) => [id, parseArpPcap(readFileSync(f))])), arpForgotten } : {}),
    ...(gratuitous ? takeoverOf(t.lab, runDir) : {}),
    ...(nftEvidence ? { nft: nftEvidence } : {}),
    ...(Object.keys(affinityWaits).length > 0 ? { affinityWaits } : {}),
    ...(problems.size > 0 ? { captureProblems: Object.fromEntries(problems), capturesEnded: [...ended] } : {}),
    packets: Object.fromEntries(packets),
    captures: Object.fromEntries(files),
    conntrack,
    countersBefore: map(before, (r) => countersByJump(r.v4)),
    countersAfter: map(after, (r) => countersByJump(r.v4)),
    dnatBefore: map(before, (r) => ({ ...dnatCountersOf(r.v4), ...dnatCountersOf(r.v6) })),
    dnatAfter: map(after, (r) => ({ ...dnatCountersOf(r.v4), ...dnatCountersOf(r.v6) })),
    routes,
    ...(Object.keys(routeSources).length > 0 ? { routeSources } : {}),
    ...(Object.keys(bgpSessions).length > 0 ? { bgpSessions } : {}),
    recent,
    flows,
    translations,
    drops,
    ...(dropsUnavailable ? { dropsUnavailable } : {}),
  };
}

/**
 * One traffic group's requests, added to `all`, until its paths are satisfied or it reaches its
 * maximum; first, if it asks, the wait for a node to forget the sender's session affinity, whose
 * record it returns.
 */
async function sendGroup(s: Sending, g: TrafficGroup, all: Flow[]): Promise<AffinityWaitEvidence | undefined> {
  const { t, ns, mode, onProgress } = s;
  const sender = trafficSender(t, g.traffic);
  const send = g.traffic.protocol === 'UDP' ? sendUdpRequest : sendRequest;
  const waitOn = g.traffic.afterAffinityExpiry;
  let waited: Awaited<ReturnType<typeof waitForAffinityExpiry>> | undefined;
  if (waitOn) {
    onProgress?.(`waiting for ${waitOn} to forget ${sender.address}'s session affinity`);
    waited = await waitForAffinityExpiry(ns(waitOn), mode, sender.address);
  }
  const mine: Flow[] = [];
  const inUse = await portsInUse(ns(sender.name));
  // A UDP source port an earlier exchange left in conntrack would ride on that entry's old translation: not used.
  if (g.traffic.protocol === 'UDP') for (const e of Object.values(await s.readAllConntrack()).flat()) if (e.protocol === 'udp' && e.original.src === sender.address) inUse.add(e.original.sport);
  // A path tied to the node that translated it needs each flow located as it goes.
  // So does a UDP exchange, whose entry is kept as found: it may expire before the run ends (udp-conntrack.ts).
  const udp = g.traffic.protocol === 'UDP';
  const locate = udp || g.paths.some((p) => p.via);
  while (mine.length < g.traffic.maxRequests && !groupSatisfied(g, mine)) {
    s.drops.before(all.length);
    const flow = await send(ns(sender.name), g.traffic, g.key, all.length, nextSourcePort(inUse), sender.address);
    s.drops.after(flow.index);
    if (locate) locateFlow(flow, await s.readAllConntrack());
    if (udp && flow.conntrack) s.kept.push({ [flow.conntrack.node]: [flow.conntrack.entry] });
    mine.push(flow);
    all.push(flow);
    onProgress?.(`request ${all.length}: ${flow.answer ? `answered by ${flow.answer.pod}` : `no answer (${flow.error})`}`);
  }
  if (!waitOn || !waited) return undefined;
  const after = await readAffinityState(ns(waitOn), mode);
  return {
    ...waited,
    node: waitOn,
    client: sender.address,
    after: after.entries.filter((e) => e.client === sender.address),
    ...(mode === 'nftables' ? {} : { hitsAtRunStart: s.hitsAtRunStart[waitOn], hitsAfter: after.affinityHits }),
  };
}

/** Routes toward the addresses the route steps name, resolved against each path's flow. */
async function readRoutesOfSteps(w: Walkthrough, flows: Flow[], ns: (host: string) => string): Promise<Pick<Evidence, 'routes'> & { routeSources: NonNullable<Evidence['routeSources']> }> {
  const queries = new Set<string>();
  for (const { path, flow } of flowsOfPaths(w, flows)) {
    for (const s of path.steps) {
      if (!s.expect?.route || !flow) continue;
      const to = resolvePattern(s.expect.route.to, flowVariables(flow));
      if (to) queries.add(`${s.at} ${to.ip}`);
    }
  }
  const routes: Evidence['routes'] = {};
  const routeSources: NonNullable<Evidence['routeSources']> = {};
  await Promise.all(
    [...queries].map(async (q) => {
      const [node, ip] = q.split(' ') as [string, string];
      const [route, source] = await Promise.all([readRoute(ns(node), ip), readRouteSource(ns(node), ip)]);
      (routes[node] ??= {})[ip] = route?.dev ?? '';
      if (source) (routeSources[node] ??= {})[ip] = source;
    }),
  );
  return { routes, routeSources };
}

/** nftables mode: the endpoint chains of the nodes dnatRule steps name, and the verdict maps of those rule steps name. */
async function readNftRules(w: Walkthrough, ns: (host: string) => string, dual: boolean): Promise<Pick<NonNullable<Evidence['nft']>, 'dnatChains' | 'maps'>> {
  return {
    dnatChains: await perNode(nodesWith(w, 'dnatRule'), async (n) => ({ ...nftDnatChainsOf(await readNftText(ns(n))), ...(dual ? nftDnatChainsOf(await readNftText(ns(n), { ipv6: true })) : {}) })),
    maps: await perNode(nodesWith(w, 'rule'), async (n) => nftMapElementsOf(await readNftObjects(ns(n)))),
  };
}

export const EVIDENCE_FILE = 'evidence.json';

/** Keep the evidence beside the pcaps; packets are not repeated (they are in the pcaps), file names are relative. */
export function saveEvidence(runDir: string, e: Evidence): void {
  const { packets: _packets, arp: _arp, ...rest } = e;
  if (rest.takeover) rest.takeover = { ...rest.takeover, packets: {} };
  const captures = Object.fromEntries(Object.entries(e.captures).map(([id, f]) => [id, basename(f)]));
  writeRunFile(join(runDir, EVIDENCE_FILE), `${JSON.stringify({ ...rest, captures }, null, 2)}\n`);
}

/** A saved run's evidence, with its packets read from its pcaps again. */
export function loadEvidence(runDir: string): Evidence {
  const saved = JSON.parse(readFileSync(join(runDir, EVIDENCE_FILE), 'utf8')) as Omit<Evidence, 'packets'>;
  const captures = Object.fromEntries(Object.entries(saved.captures).map(([id, f]) => [id, join(runDir, f)]));
  const packets = Object.fromEntries(Object.entries(captures).map(([id, f]) => [id, parsePcap(readFileSync(f))]));
  const arp = saved.arpForgotten ? { arp: Object.fromEntries(Object.entries(captures).map(([id, f]) => [id, parseArpPcap(readFileSync(f))])) } : {};
  const takeover = saved.takeover ? { takeover: { ...saved.takeover, packets: takeoverPackets(runDir, saved.takeover.captures) } } : {};
  return { ...saved, captures, packets, ...arp, ...takeover };
}
