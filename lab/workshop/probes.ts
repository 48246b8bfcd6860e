import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withCaptures } from '../capture/tcpdump.js';
import { describePacket } from '../capture/pcap.js';
import type { ConntrackEntry } from '../kernel/conntrack.js';
import { isLabSourcePort, nextSourcePort, portsInUse } from '../kernel/ports.js';
import { DEFAULT_TCP_TIMEOUTS, readConntrack, readConntrackTimeouts, readRoute, readRules } from '../kernel/readers.js';
import { parseSave, type ParsedRule } from '../plan/kube-proxy/rules.js';
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
  return v === undefined ? undefined : v.replace(/\/32$/, '');
}

async function probeRule(c: NonNullable<Check['rule']>, live: LiveLab): Promise<ProbeResult> {
  if (live.topology.kubeProxy.mode === 'nftables') return { unavailable: iptablesOnly(live.lab, c.node) };
  const ns = namespaceName(live.lab, c.node);
  const stdout = await readRules(ns, { table: c.table, allowFailure: false });
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
  for (let i = 0; i < MAX_REQUESTS; i++) {
    const flow = await sendRequest(ns, traffic, 'workshop', i, nextSourcePort(inUse), sender.address);
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
  const value = c.field === 'client' ? a.client : c.field === 'pod' ? a.pod : c.field === 'node' ? a.node : c.field === 'target' ? hit.target : `${a.podIP}:${a.port}`;
  return { values: [value], evidence: JSON.stringify(a) };
}

async function probeCapture(c: NonNullable<Check['capture']>, live: LiveLab): Promise<ProbeResult> {
  const [host, ifname] = c.at.split(':') as [string, string];
  const point = { id: c.at, host, ifname, ns: namespaceName(live.lab, host) };
  const dir = mkdtempSync(join(tmpdir(), 'lab-workshop-'));
  try {
    const { result, packets } = await withCaptures([point], dir, () => requestsUntilEndpoint(c, live));
    if (!result.hit) return noHit(c, result.flows);
    const flow = result.hit;
    const here = (packets.get(c.at) ?? []).filter((p) => packetInFlow(p, flow));
    const pkt = here.find((p) => p.flags === c.flags);
    if (!pkt) {
      return { unavailable: `a capture on ${c.at} saw ${here.length ? `${here.length} packets of the connection, none with flags [${c.flags}]` : 'no packet of the connection'}; the lab may be damaged (lab workshop --check)` };
    }
    const value = c.field === 'src' ? `${pkt.src}:${pkt.sport}` : `${pkt.dst}:${pkt.dport}`;
    return { values: [value], evidence: `${c.at}: ${describePacket(pkt)}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function probeRoute(c: NonNullable<Check['route']>, live: LiveLab): Promise<ProbeResult> {
  const ns = namespaceName(live.lab, c.node);
  const route = await readRoute(ns, c.to);
  if (!route) return { unavailable: `${c.node} has no route to ${c.to}: the lab may be damaged (lab workshop --check)` };
  const value = c.field === 'dev' ? route.dev : route.gateway;
  if (!value) return { unavailable: `${c.node} reaches ${c.to} without a next hop (it is on a directly connected network)` };
  return { values: [value], evidence: `${c.to} ${route.gateway ? `via ${route.gateway} ` : ''}dev ${route.dev}` };
}
