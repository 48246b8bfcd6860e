import { describePacket, type TcpPacket } from '../capture/pcap.js';
import type { ConntrackEntry } from '../kernel/conntrack.js';
import { judgeAffinityExpired } from './affinity-expiry.js';
import { judgeAllVia, judgeArp, judgeGratuitousArp } from './arp-judges.js';
import type { Evidence } from './evidence.js';
import { addressMatches, flowVariables, formatPattern, packetInFlow, resolvePattern, splitAddress, type AddressPattern, type Flow } from './flows.js';
import { joinHostPort } from '../util/ipv6.js';
import { patternWords, unseenPathText } from './outcome.js';
import { flowsOfPaths } from './paths.js';
import type { Step, Walkthrough } from './walkthrough.js';

/**
 * Judging a walkthrough against a run's evidence: one small pure function per check kind.
 * Adding a check kind means a schema field, a reader in gatherEvidence if it needs one, and a
 * judge here.
 */

export type StepStatus = 'pass' | 'fail' | 'n/a';

export interface StepResult {
  step: string;
  title: string;
  at: string;
  expected: string;
  seen: string;
  status: StepStatus;
  note?: string;
}

export interface PathResult {
  name: string;
  summary: string;
  endpoint?: string;
  flow?: Flow;
  steps: StepResult[];
}

type Expect = NonNullable<Step['expect']>;
export type CheckKind = keyof Expect;

export interface Verdict {
  ok: boolean;
  expected: string;
  seen: string;
}

export interface JudgeContext {
  /** The step's place: an observation point or a node. */
  at: string;
  /** Every flow of the path's traffic. */
  groupFlows: Flow[];
  evidence: Evidence;
}

/** Judges that look at the whole traffic group or every capture: they need no single flow. */
type GroupJudge<K extends CheckKind> = (e: NonNullable<Expect[K]>, ctx: JudgeContext) => Verdict;
/** Judges of one flow: $client, $pod, $snat… resolve against it. */
type FlowJudge<K extends CheckKind> = (e: NonNullable<Expect[K]>, ctx: JudgeContext & { flow: Flow; pat: (x: string) => AddressPattern | undefined }) => Verdict;

const verdict = (ok: boolean, expected: string, seen: string): Verdict => ({ ok, expected, seen });
const countOf = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** Checks that look at the whole traffic group or every capture, not at one request. */
const GROUP_KINDS = ['never', 'share', 'sameEndpoint', 'httpResponse', 'bgpSession', 'allVia', 'arp', 'gratuitousArp'] as const;
type GroupKind = (typeof GROUP_KINDS)[number];
const isGroupKind = (k: CheckKind): k is GroupKind => (GROUP_KINDS as readonly string[]).includes(k);

export const groupJudges: { [K in GroupKind]: GroupJudge<K> } = {
  never(addr, { evidence }) {
    const carries = (p: TcpPacket): boolean => p.src === addr || p.dst === addr || (p.vxlan !== undefined && carries(p.vxlan.inner));
    // A request the lab sent to the address itself (a pod calling the ClusterIP) carries it until it is translated: not the claim's.
    const sentToIt = evidence.flows.filter((f) => splitAddress(f.target).ip === addr);
    const ofThose = (p: TcpPacket): boolean => sentToIt.some((f) => packetInFlow(p, f)) || (p.vxlan !== undefined && ofThose(p.vxlan.inner));
    const hits = Object.entries(evidence.packets).flatMap(([point, pkts]) => pkts.filter((p) => carries(p) && !ofThose(p)).map((p) => `${point}: ${describePacket(p)}`));
    const total = Object.values(evidence.packets).reduce((n, p) => n + p.length, 0);
    const but = sentToIt.length ? `, those of the ${countOf(sentToIt.length, 'request')} sent to it left aside` : '';
    return verdict(hits.length === 0, `${addr} on no packet${but ? ' of other traffic' : ''}`, hits[0] ?? `absent from all ${total} captured packets${but}`);
  },
  share(e, { groupFlows }) {
    const answered = groupFlows.filter((f) => f.answer);
    const counts = e.endpoints.map((ep) => answered.filter((f) => f.answer!.pod === ep).length);
    const shares = counts.map((c) => (answered.length ? c / answered.length : 0));
    const ok = answered.length > 0 && shares.every((x) => x >= e.min && x <= e.max);
    const seen = e.endpoints.map((ep, i) => `${ep} ${counts[i]} (${Math.round(shares[i]! * 100)}%)`).join(', ');
    return verdict(ok, `each of ${e.endpoints.join(', ')} ${Math.round(e.min * 100)}-${Math.round(e.max * 100)}% of ${answered.length}`, seen);
  },
  sameEndpoint(_e, { groupFlows }) {
    const pods = new Set(groupFlows.map((f) => f.answer?.pod ?? '(no answer)'));
    return verdict(pods.size === 1 && !pods.has('(no answer)'), `all ${groupFlows.length} requests reach one pod`, [...pods].join(', '));
  },
  httpResponse(e, { at, evidence }) {
    const src = resolvePattern(e.src, {});
    const dst = resolvePattern(e.dst, {});
    const expected = `HTTP ${e.status} from ${formatPattern(src, e.src)} to ${formatPattern(dst, e.dst)}`;
    const statusOf = (p: TcpPacket) => /^HTTP\/1\.[01] (\d{3})/.exec(p.payload)?.[1];
    const responses = (evidence.packets[at] ?? []).filter((p) => src && dst && addressMatches(src, p.src, p.sport) && addressMatches(dst, p.dst, p.dport) && statusOf(p));
    const hit = responses.find((p) => Number(statusOf(p)) === e.status);
    // The status line, and kube-proxy's count when the body is a health check answer.
    const show = (p: TcpPacket) => [`${describePacket(p)}: ${p.payload.split('\r\n')[0]}`, /"localEndpoints": ?\d+/.exec(p.payload)?.[0]].filter(Boolean).join(', ') + ` (${responses.length} such responses)`;
    return verdict(Boolean(hit), expected, hit ? show(hit) : responses.length ? `other statuses: ${show(responses[0]!)}` : 'no such HTTP response captured here');
  },
  bgpSession(e, { at, evidence }) {
    const sessions = evidence.bgpSessions?.[at] ?? [];
    const s = sessions.find((x) => x.peer === e.peer);
    const seen = s ? `${at} ↔ ${e.peer}: ${s.state} ${s.info}`.trim() : sessions.length ? `no session with ${e.peer} (${sessions.map((x) => x.peer).join(', ')})` : `no BIRD answering in ${at}`;
    return verdict(Boolean(s?.info.startsWith('Established')), `BGP session ${at} ↔ ${e.peer} Established`, seen);
  },
  allVia: (node, { groupFlows }) => judgeAllVia(node, groupFlows),
  arp: (e, { at, evidence }) => judgeArp(e, evidence.arp?.[at], evidence.macs),
  gratuitousArp: (e, { evidence }) => judgeGratuitousArp(e, evidence.takeover, evidence.macs),
};

type PacketPattern = { src: string; dst: string; flags?: string };
type Resolve = (x: string) => AddressPattern | undefined;

/** A captured packet matches a step's addresses and, when it names them, flags. */
const matchesPacket = (e: PacketPattern, p: TcpPacket, pat: Resolve): boolean => {
  const src = pat(e.src);
  const dst = pat(e.dst);
  return Boolean(src && dst && addressMatches(src, p.src, p.sport) && addressMatches(dst, p.dst, p.dport) && (!e.flags || p.flags === e.flags));
};
const describeExpected = (e: PacketPattern, pat: Resolve) => `${formatPattern(pat(e.src), e.src)} > ${formatPattern(pat(e.dst), e.dst)}${e.flags ? ` [${e.flags}]` : ''}`;

const showEntry = (x: ConntrackEntry) => `orig ${joinHostPort(x.original.src, x.original.sport)} > ${joinHostPort(x.original.dst, x.original.dport)}, reply ${joinHostPort(x.reply.src, x.reply.sport)} > ${joinHostPort(x.reply.dst, x.reply.dport)}`;

export const flowJudges: { [K in Exclude<CheckKind, GroupKind>]: FlowJudge<K> } = {
  packet(e, { at, flow, pat, evidence }) {
    const expected = `${describeExpected(e, pat)}${e.mss ? ` mss ${e.mss}` : ''}`;
    const here = (evidence.packets[at] ?? []).filter((p) => packetInFlow(p, flow));
    const hit = here.find((p) => matchesPacket(e, p, pat) && (e.mss === undefined || p.mss === e.mss));
    const show = (p: TcpPacket) => `${describePacket(p)}${e.mss ? ` mss ${p.mss ?? 'none'}` : ''}`;
    return verdict(Boolean(hit), expected, hit ? show(hit) : here.length ? `not this one; first of ${here.length}: ${show(here[0]!)}` : 'no packet of this connection');
  },
  frame(e, { at, flow, pat, evidence }) {
    const macs = evidence.macs?.[e.to] ?? [];
    const owner = (mac: string | undefined) => Object.entries(evidence.macs ?? {}).find(([, m]) => mac && m.includes(mac))?.[0];
    const here = (evidence.packets[at] ?? []).filter((p) => packetInFlow(p, flow) && matchesPacket(e, p, pat));
    const hit = here.find((p) => p.dstMac !== undefined && macs.includes(p.dstMac));
    const expected = `${e.absent ? 'no frame' : 'a frame'} to ${e.to} (${macs.join(', ') || 'no MAC read'}) carrying ${describeExpected(e, pat)}`;
    const show = (p: TcpPacket) => `${describePacket(p)} in a frame to ${p.dstMac ?? '(no link header)'}${owner(p.dstMac) ? ` (${owner(p.dstMac)})` : ''}`;
    const seen = hit ? show(hit) : here.length ? `${here.length} such frames, none to ${e.to}: ${show(here[0]!)}` : 'no packet of this connection here';
    return verdict(e.absent ? !hit : Boolean(hit), expected, seen);
  },
  encapsulated(e, { at, flow, pat, evidence }) {
    const outerSrc = pat(e.outer.src);
    const outerDst = pat(e.outer.dst);
    const tunnelled = (evidence.packets[at] ?? []).filter((p) => p.vxlan && packetInFlow(p.vxlan.inner, flow));
    const hit = tunnelled.find((p) => outerSrc && outerDst && addressMatches(outerSrc, p.src, p.sport) && addressMatches(outerDst, p.dst, p.dport) && (e.vni === undefined || p.vxlan!.vni === e.vni) && matchesPacket(e.inner, p.vxlan!.inner, pat));
    const expected = `UDP ${formatPattern(outerSrc, e.outer.src)} > ${formatPattern(outerDst, e.outer.dst)}${e.vni === undefined ? '' : ` VXLAN vni ${e.vni}`} carrying ${describeExpected(e.inner, pat)}`;
    const captured = (evidence.packets[at] ?? []).length;
    return verdict(Boolean(hit), expected, hit ? describePacket(hit) : tunnelled.length ? `not this one; first of ${tunnelled.length}: ${describePacket(tunnelled[0]!)}` : `no VXLAN datagram carrying this connection (of ${captured} captured here)`);
  },
  noPacket(_e, { at, flow, evidence }) {
    // Any packet from or to the request's own source address and port counts too, so a
    // request that was never translated (dropped, or translated elsewhere) is still caught.
    // A VXLAN datagram counts by the packet it carries: under vxlan a leak crosses eth0 wrapped.
    const touchesClient = (p: TcpPacket) => joinHostPort(p.src, p.sport) === flow.client || joinHostPort(p.dst, p.dport) === flow.client;
    const ofThisRequest = (p: TcpPacket): boolean => packetInFlow(p, flow) || touchesClient(p) || (p.vxlan !== undefined && ofThisRequest(p.vxlan.inner));
    const all = evidence.packets[at] ?? [];
    const here = all.filter(ofThisRequest);
    return verdict(here.length === 0, 'no packet of this connection', here.length ? describePacket(here[0]!) : `none (of ${all.length} captured here)`);
  },
  conntrack({ original: o, reply: r }, { at, flow, pat, evidence }) {
    const expected = `orig ${formatPattern(pat(o.src), o.src)} > ${formatPattern(pat(o.dst), o.dst)}, reply ${formatPattern(pat(r.src), r.src)} > ${formatPattern(pat(r.dst), r.dst)}`;
    const match = (p: string, ip: string, port: number) => {
      const a = pat(p);
      return a !== undefined && addressMatches(a, ip, port);
    };
    const hit = (evidence.conntrack[at] ?? []).find((x) => match(o.src, x.original.src, x.original.sport) && match(o.dst, x.original.dst, x.original.dport) && match(r.src, x.reply.src, x.reply.sport) && match(r.dst, x.reply.dst, x.reply.dport));
    const mine = flow.conntrack && flow.conntrack.node === at ? flow.conntrack.entry : undefined;
    return verdict(Boolean(hit), expected, hit ? showEntry(hit) : mine ? showEntry(mine) : flow.conntrack ? `entry is on ${flow.conntrack.node}, not ${at}` : 'no entry');
  },
  answer(e, { flow, pat }) {
    const want = pat(e.client);
    const saw = flow.answer?.client;
    const { ip: addr, port } = saw ? splitAddress(saw) : { ip: '', port: 0 };
    return verdict(Boolean(want && saw && addressMatches(want, addr, port)), `pod saw client ${formatPattern(want, e.client)}`, saw ? `${flow.answer!.pod} saw ${saw}` : 'no answer');
  },
  noAnswer(_e, { flow }) {
    return verdict(!flow.answer, 'no answer (dropped)', flow.answer ? `answered by ${flow.answer.pod}` : (flow.error ?? 'no answer'));
  },
  route(e, { at, pat, evidence }) {
    const to = pat(e.to);
    const dev = (to && evidence.routes[at]?.[to.ip]) || '';
    const source = to ? evidence.routeSources?.[at]?.[to.ip] : undefined;
    const ok = dev === e.dev && (e.via === undefined || source?.via === e.via) && (e.proto === undefined || source?.proto === e.proto);
    const expected = `route to ${to?.ip ?? patternWords(e.to)} leaves via ${e.dev}${e.via ? ` (gateway ${e.via})` : ''}${e.proto ? `, proto ${e.proto}` : ''}`;
    const learned = source && (e.via || e.proto) ? `: ${source.dst}${source.via ? ` via ${source.via}` : ''} proto ${source.proto}` : '';
    return verdict(ok, expected, dev ? `via ${dev}${learned}` : 'no route');
  },
  dnatRule(e, { at, pat, evidence }) {
    const to = pat(e.to);
    const key = to ? joinHostPort(to.ip, `${to.port}`) : '';
    if (!to) return verdict(false, `a DNAT rule to ${patternWords(e.to)} counts this connection`, 'no request resolved the address');
    if (evidence.nft) {
      // No counters in nftables mode: the endpoint chain that DNATs there, and the connections that appeared translated there.
      const chains = evidence.nft.dnatChains[at]?.[key] ?? [];
      const before = new Set(evidence.nft.translatedBefore[at]?.[key] ?? []);
      const fresh = (evidence.nft.translatedAfter[at]?.[key] ?? []).filter((c) => !before.has(c));
      const seen = chains.length ? `${chains.join(', ')}: dnat to ${key}; ${countOf(fresh.length, 'new connection')} translated there (conntrack)` : `no endpoint chain dnats to ${key}`;
      return verdict(chains.length > 0 && fresh.length >= 1, `an endpoint chain's "dnat to ${key}" translated this run's connection`, seen);
    }
    const before = evidence.dnatBefore[at]?.[key] ?? 0;
    const after = evidence.dnatAfter[at]?.[key];
    const sentThere = evidence.flows.filter((f) => f.conntrack?.node === at && flowVariables(f).pod === key).length;
    const seen = after === undefined ? 'no such rule' : `counter +${after - before}${sentThere > 0 ? ` (${countOf(sentThere, 'connection')} of this run went there)` : ''}`;
    return verdict(after !== undefined && after - before >= 1, `DNAT --to-destination ${key} counts this connection`, seen);
  },
  rule(e, { at, flow, evidence }) {
    if (evidence.nft) {
      // The same decision as a verdict-map element, for the port this path's traffic went to.
      const want = e.nftables;
      if (!want) return verdict(false, `an nftables counterpart of ${e.chain} -j ${e.jump}`, 'the walkthrough names none (rule.nftables)');
      const port = String(splitAddress(flow.target).port);
      const elements = (evidence.nft.maps[at] ?? []).filter((x) => x.map === want.map && x.key.split(' . ').includes(port));
      const hit = elements.find((x) => x.verdict === want.verdict);
      const show = (x: (typeof elements)[number]) => `@${x.map} { ${x.key}${x.comment ? ` comment "${x.comment}"` : ''} : ${x.verdict} }`;
      return verdict(Boolean(hit), `@${want.map} holds port ${port} : ${want.verdict}`, hit ? show(hit) : elements[0] ? show(elements[0]) : `no element for port ${port} in @${want.map}`);
    }
    const key = `${e.table} ${e.chain} ${e.jump}`;
    const before = evidence.countersBefore[at]?.[key];
    const after = evidence.countersAfter[at]?.[key];
    const expected = `${e.table} ${e.chain} -j ${e.jump} counts packets`;
    if (!after) return verdict(false, expected, `no such rule on ${at}`);
    const delta = after.packets - (before?.packets ?? 0);
    return verdict(delta >= 1, expected, `counter +${delta}${after.comment ? ` ("${after.comment}")` : ''}`);
  },
  recent(e, { at, pat, evidence }) {
    const client = pat(e.client);
    const endpoint = pat(e.endpoint);
    const want = endpoint ? joinHostPort(endpoint.ip, `${endpoint.port}`) : patternWords(e.endpoint);
    const lists = evidence.recent[at] ?? [];
    const holding = lists.filter((l) => client && l.sources.includes(client.ip));
    const ok = holding.length === 1 && holding[0]!.endpoint === want;
    const seen = holding.length ? holding.map((l) => `${l.chain} (${l.endpoint}) holds ${client?.ip}`).join('; ') : `${client?.ip} in none of ${lists.length} lists`;
    const what = evidence.nft ? 'affinity set' : 'recent list of the KUBE-SEP';
    return verdict(ok, `${what} for ${want} holds ${client?.ip ?? patternWords(e.client)}, no other does`, seen);
  },
  affinityExpired(e, { at, pat, evidence, groupFlows }) {
    const wait = evidence.affinityWaits?.[groupFlows[0]?.group ?? ''];
    return judgeAffinityExpired(pat(e.client)?.ip ?? patternWords(e.client), at, wait, groupFlows.length);
  },
};

/** The one check kind a step's expect holds (the walkthrough loader insists on exactly one). */
export function checkKind(s: Step): CheckKind | undefined {
  return s.expect ? (Object.keys(s.expect).find((k) => (s.expect as Record<string, unknown>)[k] !== undefined) as CheckKind | undefined) : undefined;
}

/** Judge one step against the evidence. Pure. */
export function judgeStep(step: Step, flow: Flow | undefined, groupFlows: Flow[], evidence: Evidence): StepResult {
  // In nftables mode a step may tell its story in nftables' own names (the pod network mode's words were put in by inPodNetwork).
  const s = evidence.mode === 'nftables' && step.nftables ? { ...step, ...step.nftables } : step;
  const base = { step: s.step, title: s.title, at: s.at ?? '', note: s.note };
  const kind = checkKind(s);
  if (s.skip || !kind) return { ...base, expected: s.skip ?? 'does not apply', seen: '', status: 'n/a' };
  const ctx: JudgeContext = { at: s.at ?? '', groupFlows, evidence };
  const value = s.expect![kind];
  let v: Verdict;
  if (isGroupKind(kind)) {
    v = (groupJudges[kind] as GroupJudge<typeof kind>)(value as never, ctx);
  } else if (!flow) {
    // What would have been checked, in words where no request resolved an address; and what became of the requests.
    const none: Flow = { index: -1, group: '', from: '', client: '', target: groupFlows[0]?.target ?? '' };
    // The sender's address is known without a flow (every request of the group came from it); its port is not.
    const senderIp = groupFlows[0] ? splitAddress(groupFlows[0].client).ip : undefined;
    const pat = (x: string) => (senderIp && /^\$client(\.ip)?(:\*)?$/.test(x) ? { ip: senderIp } : resolvePattern(x, {}));
    const { expected } = (flowJudges[kind] as FlowJudge<typeof kind>)(value as never, { ...ctx, flow: none, pat });
    v = verdict(false, expected, unseenPathText(groupFlows, evidence.drops));
  } else {
    const vars = flowVariables(flow);
    v = (flowJudges[kind] as FlowJudge<typeof kind>)(value as never, { ...ctx, flow, pat: (x) => resolvePattern(x, vars) });
  }
  v = blameCapture(kind, s.at ?? '', v, evidence);
  return { ...base, expected: v.expected, seen: v.seen, status: v.ok ? 'pass' : 'fail' };
}

/**
 * A capture that went wrong takes the blame, by name: a packet missing where tcpdump died or
 * lost packets says so instead of "no packet of this connection", and an absence (noPacket,
 * never) seen by a capture that ended early proves nothing, so it fails. Pure.
 */
export function blameCapture(kind: CheckKind, at: string, v: Verdict, evidence: Pick<Evidence, 'captureProblems' | 'capturesEnded'>): Verdict {
  const problems = evidence.captureProblems ?? {};
  const ended = evidence.capturesEnded ?? [];
  if (kind === 'never') {
    const dead = ended.find((p) => problems[p]);
    return v.ok && dead ? { ...v, ok: false, seen: `cannot tell: ${problems[dead]}` } : v;
  }
  if (kind === 'noPacket' && v.ok && ended.includes(at)) return { ...v, ok: false, seen: `cannot tell: ${problems[at]}` };
  if ((kind === 'packet' || kind === 'httpResponse') && !v.ok && problems[at]) return { ...v, seen: `capture failed: ${problems[at]} (${v.seen})` };
  return v;
}

/** Judge every path of a walkthrough against a run's evidence. Pure. */
export function judgeWalkthrough(w: Walkthrough, evidence: Evidence): PathResult[] {
  return flowsOfPaths(w, evidence.flows).map(({ path: p, groupFlows, flow }) => ({
    name: p.name,
    summary: p.summary,
    endpoint: p.endpoint,
    flow,
    steps: p.steps.map((s) => judgeStep(s, flow, groupFlows, evidence)),
  }));
}
