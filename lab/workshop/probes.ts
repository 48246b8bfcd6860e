import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withCaptures } from '../capture/tcpdump.js';
import { describePacket, type TcpPacket } from '../capture/pcap.js';
import type { ConntrackEntry } from '../kernel/conntrack.js';
import { isLabSourcePort, nextSourcePort, portsInUse } from '../kernel/ports.js';
import { runIn } from '../kernel/exec.js';
import { DEFAULT_TCP_TIMEOUTS, elementOf, nftMapElementsOf, readConntrack, readConntrackTimeouts, readNftObjects, readNftText, readRoute, readRouteSource, readRules, type NftObject } from '../kernel/readers.js';
import { parseSave, type ParsedRule } from '../plan/kube-proxy/rules.js';
import { podNetworkOf } from '../plan/pod-network/index.js';
import type { Topology } from '../topology/schema.js';
import { namespaceName } from '../topology/names.js';
import { packetInFlow, type Flow } from '../verify/flows.js';
import { sendRequest } from '../verify/traffic.js';
import type { Traffic } from '../verify/walkthrough.js';
import { parseAddress } from './answers.js';
import type { Check } from './schema.js';

/**
 * Reading the answer to a step's question from the live lab, at the moment the learner answers.
 * Every probe only reads (iptables-save, conntrack -L, ip route get) or sends its own requests.
 */

export type ProbeResult =
  /** Any of these is right (several when the lab cannot tell which connection the learner means). */
  | { values: string[]; evidence?: string }
  /** The lab cannot say yet, e.g. no connection to look at: not counted against the learner. */
  | { unavailable: string };

export interface LiveLab {
  lab: string;
  topology: Topology;
}

const MAX_REQUESTS = 24;

export async function probe(check: Check, live: LiveLab): Promise<ProbeResult> {
  if (check.value !== undefined) return { values: Array.isArray(check.value) ? check.value : [check.value] };
  if (check.conntrack) return probeConntrack(check.conntrack, live);
  if (check.rule) return probeRule(check.rule, live);
  if (check.request) return probeRequest(check.request, live);
  if (check.capture) return probeCapture(check.capture, live);
  if (check.route) return probeRoute(check.route, live);
  if (check.nft) return probeNft(check.nft, live);
  if (check.neighbour) return probeNeighbour(check.neighbour, live);
  if (check.fdb) return probeFdb(check.fdb, live);
  return { unavailable: 'this step has no check' };
}

/** Does "10.240.0.4:32000" / "10.240.0.4" match this ip and port? */
function addressMatches(pattern: string | undefined, ip: string, port: number): boolean {
  if (!pattern) return true;
  const a = parseAddress(pattern);
  return a !== undefined && a.ip === ip && (a.port === undefined || a.port === port);
}

/**
 * Seconds since the entry last saw a packet: every packet resets its timer to the state's
 * timeout, so idle = timeout - remaining. The remaining seconds are `conntrack -L`'s third column.
 */
export function idleSeconds(e: ConntrackEntry, timeouts: Record<string, number>): number {
  const remaining = Number(e.text.split(/\s+/)[2]);
  const full = timeouts[e.state.toLowerCase()] ?? DEFAULT_TCP_TIMEOUTS[e.state.toLowerCase()];
  if (!Number.isFinite(remaining) || full === undefined) return Number.POSITIVE_INFINITY;
  return Math.max(0, full - remaining);
}

/**
 * The learner's most recent connection among the entries: the least idle. The timer counts
 * whole seconds, so connections made within the same second tie, and all of them count as
 * "the last one" (a newer connection is never more idle than an older one).
 */
export function mostRecent<T extends { idle: number }>(items: T[]): T[] {
  const ranked = items.filter((x) => Number.isFinite(x.idle));
  if (ranked.length === 0) return [];
  const least = Math.min(...ranked.map((x) => x.idle));
  return ranked.filter((x) => x.idle === least);
}

export function conntrackField(e: ConntrackEntry, field: 'original.src' | 'original.dst' | 'reply.src' | 'reply.dst'): string {
  const [side, end] = field.split('.') as ['original' | 'reply', 'src' | 'dst'];
  const t = e[side];
  return end === 'src' ? `${t.src}:${t.sport}` : `${t.dst}:${t.dport}`;
}

async function probeConntrack(c: NonNullable<Check['conntrack']>, live: LiveLab): Promise<ProbeResult> {
  const nodes = Array.isArray(c.node) ? c.node : [c.node];
  const tables = await Promise.all(
    nodes.map(async (node) => {
      const ns = namespaceName(live.lab, node);
      const [entries, timeouts] = await Promise.all([readConntrack(ns), readConntrackTimeouts(ns)]);
      return entries.map((entry) => ({ node, entry, idle: idleSeconds(entry, timeouts), timeWait: timeouts.time_wait ?? 120 }));
    }),
  );
  const mine = tables.flat().filter(
    ({ entry: e }) =>
      addressMatches(c.original.src, e.original.src, e.original.sport) &&
      addressMatches(c.original.dst, e.original.dst, e.original.dport) &&
      !isLabSourcePort(e.original.sport),
  );
  const last = mostRecent(mine);
  if (last.length === 0) {
    const what = [c.original.src && `from ${c.original.src}`, c.original.dst && `to ${c.original.dst}`].filter(Boolean).join(' ');
    const where = nodes.length === 1 ? `${nodes[0]}'s connection-tracking table holds` : `the connection-tracking tables of ${nodes.join(', ')} hold`;
    return { unavailable: `${where} no connection ${what} (an entry goes ${tables.flat()[0]?.timeWait ?? 120} s after its connection closes): run the command above, then answer` };
  }
  const values = last.map((x) => (c.field === 'node' ? x.node : conntrackField(x.entry, c.field as Exclude<typeof c.field, 'node'>)));
  return { values: [...new Set(values)], evidence: last.map((x) => `${x.node}: ${x.entry.text}`).join('\n') };
}

/** "KUBE-SVC-*" → a whole-string pattern. */
export function globMatches(glob: string | undefined, value: string | undefined): boolean {
  if (glob === undefined) return true;
  if (value === undefined) return false;
  const re = new RegExp(`^${glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(value);
}

/** A rule question asked of a lab whose kube-proxy runs in nftables mode: say so, not "damaged". Pure. */
export function iptablesOnly(lab: string, node: string): string {
  return `this question is about kube-proxy's iptables rules, and lab ${lab} runs kube-proxy in nftables mode: there the same decisions are the verdict maps, the service-… and endpoint-… chains and numgen of table ip kube-proxy (lab rules ${lab} ${node} prints it). Type skip to go on.`;
}

/** The rules that match a rule check, in iptables-save order. Pure. */
export function matchingRules(rules: ParsedRule[], c: { table: string; chain: string; comment?: string; jump?: string }): ParsedRule[] {
  return rules.filter((r) => r.table === c.table && globMatches(c.chain, r.chain) && globMatches(c.comment, r.options.get('--comment')) && globMatches(c.jump, r.options.get('-j')));
}

export function ruleField(r: ParsedRule, field: string): string | undefined {
  if (field === 'chain') return r.chain;
  const v = r.options.get(field);
  return v === undefined ? undefined : v.replace(/\/(32|128)$/, '');
}

async function probeRule(c: NonNullable<Check['rule']>, live: LiveLab): Promise<ProbeResult> {
  if (live.topology.kubeProxy.mode === 'nftables') return { unavailable: iptablesOnly(live.lab, c.node) };
  const ns = namespaceName(live.lab, c.node);
  const stdout = await readRules(ns, { table: c.table, allowFailure: false, ipv6: c.family === 'ipv6' });
  const hits = matchingRules(parseSave(stdout).rules, c);
  if (c.field === 'count') return { values: [String(hits.length)], evidence: hits.map((r) => r.text).join('\n') };
  const what = [`chain ${c.chain}`, c.comment && `comment "${c.comment}"`, c.jump && `-j ${c.jump}`].filter(Boolean).join(', ');
  const r = hits[c.nth - 1];
  if (!r) {
    return { unavailable: `${c.node}'s ${c.table} table has ${hits.length ? `only ${hits.length}` : 'no'} rule${hits.length === 1 ? '' : 's'} matching ${what}: kube-proxy's rules look damaged (an instructor can run lab workshop ${live.lab} --check)` };
  }
  const value = ruleField(r, c.field);
  if (value === undefined) return { unavailable: `the rule has no ${c.field}: ${r.text}` };
  return { values: [value], evidence: r.text };
}

interface TrafficCheck {
  from: string;
  to: string;
  endpoint?: string;
}

/** Send requests one by one until one is answered by the endpoint (any pod, without one). */
async function requestsUntilEndpoint(c: TrafficCheck, live: LiveLab): Promise<{ hit?: Flow; flows: Flow[] }> {
  const sender = [...live.topology.clients, ...live.topology.pods].find((h) => h.name === c.from)!;
  const traffic: Traffic = { from: c.from, to: c.to, requests: 1, maxRequests: 1, timeout: 1 };
  const ns = namespaceName(live.lab, sender.name);
  const flows: Flow[] = [];
  const inUse = await portsInUse(ns);
  // "[fd00:…]:port": an IPv6 request, from the sender's IPv6 address.
  const from = c.to.startsWith('[') ? (sender.address6 ?? sender.address) : sender.address;
  for (let i = 0; i < MAX_REQUESTS; i++) {
    const flow = await sendRequest(ns, traffic, 'workshop', i, nextSourcePort(inUse), from);
    flows.push(flow);
    if (flow.answer && (!c.endpoint || flow.answer.pod === c.endpoint)) return { hit: flow, flows };
  }
  return { flows };
}

function noHit(c: TrafficCheck, flows: Flow[]): ProbeResult {
  const answered = flows.filter((f) => f.answer).map((f) => f.answer!.pod);
  const seen = answered.length ? `answers came from ${[...new Set(answered)].join(', ')}` : `no answer at all (${flows[0]?.error ?? 'none sent'})`;
  return { unavailable: `the lab sent ${flows.length} requests from ${c.from} to ${c.to} and none was answered by ${c.endpoint ?? 'a pod'}: ${seen}. The lab may be damaged (lab workshop --check)` };
}

async function probeRequest(c: NonNullable<Check['request']>, live: LiveLab): Promise<ProbeResult> {
  const { hit, flows } = await requestsUntilEndpoint(c, live);
  if (!hit) return noHit(c, flows);
  const a = hit.answer!;
  const value = c.field === 'client' ? a.client : c.field === 'pod' ? a.pod : c.field === 'node' ? a.node : c.field === 'target' ? hit.target : `${a.podIP.includes(':') ? `[${a.podIP}]` : a.podIP}:${a.port}`;
  return { values: [value], evidence: JSON.stringify(a) };
}

async function probeCapture(c: NonNullable<Check['capture']>, live: LiveLab): Promise<ProbeResult> {
  const [host, ifname] = c.at.split(':') as [string, string];
  const point = { id: c.at, host, ifname, ns: namespaceName(live.lab, host) };
  const dir = mkdtempSync(join(tmpdir(), 'lab-workshop-'));
  try {
    // The pod network's tunnel, if any, is captured too: its datagrams carry the flows between nodes.
    const tunnel = podNetworkOf(live.topology).plan(live.topology).tunnel;
    const filter = tunnel ? ['tcp', 'or', 'udp', 'port', String(tunnel.port)] : undefined;
    const { result, packets } = await withCaptures([point], dir, () => requestsUntilEndpoint(c, live), filter);
    if (!result.hit) return noHit(c, result.flows);
    const flow = result.hit;
    // A VXLAN datagram is judged by the packet it carries; `outer` reads its own (UDP) header.
    const carried = (p: TcpPacket) => p.vxlan?.inner ?? p;
    const here = (packets.get(c.at) ?? []).filter((p) => packetInFlow(carried(p), flow));
    const pkt = here.find((p) => carried(p).flags === c.flags && (!c.outer || p.vxlan));
    if (!pkt) {
      const what = c.outer ? `a VXLAN datagram carrying a packet with flags [${c.flags}]` : `flags [${c.flags}]`;
      return { unavailable: `a capture on ${c.at} saw ${here.length ? `${here.length} packets of the connection, none with ${what}` : 'no packet of the connection'}; the lab may be damaged (lab workshop --check)` };
    }
    const read = c.outer ? pkt : carried(pkt);
    const value = c.field === 'src' ? `${read.src}:${read.sport}` : `${read.dst}:${read.dport}`;
    return { values: [value], evidence: `${c.at}: ${describePacket(pkt)}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function probeRoute(c: NonNullable<Check['route']>, live: LiveLab): Promise<ProbeResult> {
  const ns = namespaceName(live.lab, c.node);
  if (c.field === 'proto') {
    const source = await readRouteSource(ns, c.to);
    if (!source) return { unavailable: `${c.node} has no route to ${c.to}: the lab may be damaged (lab workshop --check)` };
    return { values: [source.proto], evidence: `${source.dst}${source.via ? ` via ${source.via}` : ''} proto ${source.proto}` };
  }
  const route = await readRoute(ns, c.to);
  if (!route) return { unavailable: `${c.node} has no route to ${c.to}: the lab may be damaged (lab workshop --check)` };
  const value = c.field === 'dev' ? route.dev : route.gateway;
  if (!value) return { unavailable: `${c.node} reaches ${c.to} without a next hop (it is on a directly connected network)` };
  return { values: [value], evidence: `${c.to} ${route.gateway ? `via ${route.gateway} ` : ''}dev ${route.dev}` };
}

/** kube-proxy's table in nftables mode, as the nft checks read it. Pure. */
export interface NftTable {
  /** Chain name → its rules, as `nft list table` prints them (one line each, trimmed). */
  chains: Map<string, string[]>;
  maps: { name: string; key: string; verdict: string }[];
  sets: { name: string; timeout?: number; elements: string[] }[];
}

/** The chains and their rules of `nft list table ip kube-proxy` text. Pure. */
export function nftChainsOf(text: string): Map<string, string[]> {
  const chains = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    const open = /^\s*chain (\S+) \{/.exec(line);
    if (open) {
      current = [];
      chains.set(open[1]!, current);
      continue;
    }
    const t = line.trim();
    if (!current) continue;
    if (t === '}') current = undefined;
    else if (t && !/^(type .* hook |comment ")/.test(t)) current.push(t);
  }
  return chains;
}

export function nftTableOf(text: string, objects: NftObject[]): NftTable {
  return {
    chains: nftChainsOf(text),
    maps: nftMapElementsOf(objects).map((e) => ({ name: e.map, key: e.key, verdict: e.verdict })),
    sets: objects.flatMap((o) => (o.set ? [{ name: o.set.name, timeout: o.set.timeout, elements: (o.set.elem ?? []).map((e) => String(elementOf(e).val)) }] : [])),
  };
}

const sameKey = (a: string, b: string) => a.replace(/\s+/g, ' ').trim() === b.replace(/\s+/g, ' ').trim();
/** "goto service-…" → "service-…"; "drop" stays. */
const verdictTarget = (v: string) => v.replace(/^(goto|jump) /, '');

/** The value an nft check asks for, from the node's table. Pure. */
export function nftValue(c: NonNullable<Check['nft']>, node: string, table: NftTable): ProbeResult {
  const none = (what: string): ProbeResult => ({ unavailable: `${node}'s table ${c.family ?? 'ip'} kube-proxy has ${what}: kube-proxy's rules look damaged (an instructor can run lab workshop --check)` });
  if (c.map) {
    const elements = table.maps.filter((e) => globMatches(c.map, e.name) && (c.key === undefined || sameKey(c.key, e.key)));
    if (c.field === 'count') return { values: [String(elements.length)], evidence: elements.map((e) => `${e.name}: ${e.key} : ${e.verdict}`).join('\n') };
    if (elements.length === 0) return none(`no element${c.key ? ` ${c.key}` : ''} in map ${c.map}`);
    if (c.field === 'elements') return { values: elements.map((e) => e.key), evidence: elements.map((e) => `${e.key} : ${e.verdict}`).join('\n') };
    const e = elements[0]!;
    return { values: [verdictTarget(e.verdict)], evidence: `map ${e.name}: ${e.key} : ${e.verdict}` };
  }
  if (c.set) {
    const sets = table.sets.filter((s) => globMatches(c.set, s.name));
    const set = sets[c.nth - 1];
    if (c.field === 'count' && !set) return { values: ['0'] };
    if (!set) return none(`${sets.length ? `only ${sets.length}` : 'no'} set named ${c.set}`);
    if (c.field === 'count') return { values: [String(set.elements.length)], evidence: `set ${set.name}: ${set.elements.join(', ')}` };
    if (c.field === 'timeout') return set.timeout === undefined ? none(`no timeout on set ${set.name}`) : { values: [String(set.timeout)], evidence: `set ${set.name}: timeout ${set.timeout} s` };
    if (set.elements.length === 0) return { unavailable: `set ${set.name} on ${node} holds no element yet: send a request first (the command above), then answer` };
    return { values: set.elements, evidence: `set ${set.name}: ${set.elements.join(', ')}` };
  }
  const chains = [...table.chains].filter(([name]) => globMatches(c.chain, name));
  const re = c.rule === undefined ? undefined : new RegExp(c.rule);
  const hits: { chain: string; rule: string; m?: RegExpExecArray }[] = chains.flatMap(([chain, rules]) => (re ? rules.flatMap((rule) => (re.test(rule) ? [{ chain, rule, m: re.exec(rule)! }] : [])) : [{ chain, rule: rules.join('\n') }]));
  if (c.field === 'count') return { values: [String(hits.length)], evidence: hits.map((h) => `${h.chain}: ${h.rule}`).join('\n') };
  const hit = hits[c.nth - 1];
  if (!hit) return none(`${hits.length ? `only ${hits.length}` : 'no'} ${re ? `rule matching /${c.rule}/ in a chain` : 'chain'} named ${c.chain}`);
  if (c.field === 'chain') return { values: [hit.chain], evidence: `chain ${hit.chain}: ${hit.rule}` };
  const value = hit.m?.[1];
  if (value === undefined) return none(`no match for /${c.rule}/'s group in chain ${hit.chain}`);
  return { values: [value], evidence: `chain ${hit.chain}: ${hit.rule}` };
}

async function probeNft(c: NonNullable<Check['nft']>, live: LiveLab): Promise<ProbeResult> {
  if (live.topology.kubeProxy.mode !== 'nftables') return { unavailable: `this question is about kube-proxy's nftables table, and lab ${live.lab} runs kube-proxy in iptables mode. Type skip to go on.` };
  const ns = namespaceName(live.lab, c.node);
  const ipv6 = c.family === 'ip6';
  const [text, objects] = await Promise.all([readNftText(ns, { ipv6 }), readNftObjects(ns, { ipv6 })]);
  return nftValue(c, c.node, nftTableOf(text, objects));
}

async function probeNeighbour(c: NonNullable<Check['neighbour']>, live: LiveLab): Promise<ProbeResult> {
  const ns = namespaceName(live.lab, c.node);
  const { stdout } = await runIn(ns, 'ip', ['-j', 'neigh', 'show', 'dev', c.dev, 'to', c.to], { allowFailure: true });
  let entries: { dst: string; lladdr?: string; state?: string[] }[] = [];
  try {
    entries = JSON.parse(stdout || '[]') as typeof entries;
  } catch {
    /* no device */
  }
  const e = entries.find((x) => x.dst === c.to && x.lladdr);
  if (!e) return { unavailable: `${c.node} has no neighbour entry for ${c.to} on ${c.dev}: the lab may be damaged (lab workshop --check)` };
  return { values: [e.lladdr!], evidence: `${e.dst} dev ${c.dev} lladdr ${e.lladdr} ${(e.state ?? []).join(' ')}` };
}

async function probeFdb(c: NonNullable<Check['fdb']>, live: LiveLab): Promise<ProbeResult> {
  const ns = namespaceName(live.lab, c.node);
  const { stdout } = await runIn(ns, 'bridge', ['-j', 'fdb', 'show', 'dev', c.dev], { allowFailure: true });
  let entries: { mac: string; dst?: string }[] = [];
  try {
    entries = JSON.parse(stdout || '[]') as typeof entries;
  } catch {
    /* no device */
  }
  const e = entries.find((x) => x.mac === c.mac && x.dst);
  if (!e) return { unavailable: `${c.node}'s forwarding database on ${c.dev} has no entry for ${c.mac}: the lab may be damaged (lab workshop --check)` };
  return { values: [e.dst!], evidence: `${e.mac} dev ${c.dev} dst ${e.dst}` };
}
