import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withCaptures, type ObservationPoint } from '../capture/tcpdump.js';
import type { TcpPacket } from '../capture/pcap.js';
import { describePacket } from '../capture/pcap.js';
import { readConntrack, type ConntrackEntry } from '../kernel/conntrack.js';
import { run, runIn } from '../kernel/exec.js';
import type { Topology } from '../topology/schema.js';
import { namespaceName } from '../topology/names.js';
import { addressMatches, flowVariables, formatPattern, packetInFlow, resolvePattern, type Flow } from './flows.js';
import { affinitySets, dnatCounters, nftDnatChains, nftMapElements, recentLists, ruleCounters, translatedConnections, type RuleCounter } from './proxy-state.js';
import { sendRequest } from './traffic.js';
import { ANY_ENDPOINT, type Step, type Traffic, type Walkthrough, type WalkthroughPath } from './walkthrough.js';

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

export interface VerifyResult {
  lab: string;
  title: string;
  seed: string;
  runDir: string;
  captures: Record<string, string>;
  flows: Flow[];
  paths: PathResult[];
  passed: number;
  failed: number;
  ms: number;
}

interface Evidence {
  packets: Map<string, TcpPacket[]>;
  conntrack: Map<string, ConntrackEntry[]>;
  dnatBefore: Map<string, Map<string, number>>;
  dnatAfter: Map<string, Map<string, number>>;
  /** Packet counters of every rule on nodes with `rule` checks: "table chain jump" → [packets, comment]. */
  countersBefore: Map<string, Map<string, RuleCounter>>;
  countersAfter: Map<string, Map<string, RuleCounter>>;
  /** nftables mode: connections each node's conntrack holds translated to each endpoint, before and after the run. */
  translatedBefore: Map<string, Map<string, Set<string>>>;
  translatedAfter: Map<string, Map<string, Set<string>>>;
  flows: Flow[];
}

const trafficKey = (t: Traffic) => JSON.stringify(t);

/**
 * Send the walkthrough's traffic with tcpdump listening at every observation point,
 * gather conntrack and rule counters, then check every documented step against them.
 */
export async function runWalkthrough(t: Topology, w: Walkthrough, runDir: string, onProgress?: (text: string) => void): Promise<VerifyResult> {
  const started = performance.now();
  mkdirSync(runDir, { recursive: true });
  const ns = (host: string) => namespaceName(t.lab, host);
  const points: ObservationPoint[] = w.observe.map((id) => {
    const [host, ifname] = id.split(':') as [string, string];
    return { id, host, ifname, ns: ns(host) };
  });

  // Paths grouped by the traffic they need: each group is sent once.
  const groups = new Map<string, { traffic: Traffic; paths: WalkthroughPath[] }>();
  for (const p of w.paths) {
    const traffic = p.traffic ?? w.traffic;
    const key = trafficKey(traffic);
    const g = groups.get(key) ?? { traffic, paths: [] };
    g.paths.push(p);
    groups.set(key, g);
  }
  // nftables mode has no rule counters to read before and after: its checks read the ruleset.
  const nft = t.kubeProxy.mode === 'nftables';
  const nodesWithRuleChecks = nft ? [] : [...new Set(w.paths.flatMap((p) => p.steps.filter((s) => s.expect?.dnatRule).map((s) => s.at!)))];
  const dnatBefore = new Map(await Promise.all(nodesWithRuleChecks.map(async (n) => [n, await dnatCounters(ns(n))] as const)));
  const nodesWithTranslations = nft ? [...new Set(w.paths.flatMap((p) => p.steps.filter((s) => s.expect?.dnatRule).map((s) => s.at!)))] : [];
  const translatedBefore = new Map(await Promise.all(nodesWithTranslations.map(async (n) => [n, await translatedConnections(ns(n))] as const)));
  const nodesWithCounterChecks = nft ? [] : [...new Set(w.paths.flatMap((p) => p.steps.filter((s) => s.expect?.rule).map((s) => s.at!)))];
  const countersBefore = new Map(await Promise.all(nodesWithCounterChecks.map(async (n) => [n, await ruleCounters(ns(n))] as const)));

  onProgress?.(`capturing on ${points.length} interfaces`);
  const { result: flows, packets, files } = await withCaptures(points, runDir, async () => {
    const all: Flow[] = [];
    // A random base port per run keeps this run's connections apart from earlier ones still in TIME_WAIT.
    let port = 20000 + Math.floor(Math.random() * 20000);
    for (const [key, g] of groups) {
      const sender = [...t.clients, ...t.pods].find((h) => h.name === g.traffic.from)!;
      const mine: Flow[] = [];
      const satisfied = () => mine.length >= g.traffic.requests && g.paths.every((p) => mine.some((f) => flowFitsPath(f, p)));
      // A path tied to the node that translated it needs each flow located as it goes.
      const locate = g.paths.some((p) => p.via);
      while (mine.length < g.traffic.maxRequests && !satisfied()) {
        const flow = await sendRequest(ns(sender.name), g.traffic, key, all.length, port++, sender.address);
        if (locate) locateFlow(flow, new Map(await Promise.all(t.nodes.map(async (n) => [n.name, await readConntrack(ns(n.name))] as const))));
        mine.push(flow);
        all.push(flow);
        onProgress?.(`request ${all.length}: ${flow.answer ? `answered by ${flow.answer.pod}` : `no answer (${flow.error})`}`);
      }
    }
    return all;
  });

  const conntrack = new Map(await Promise.all(t.nodes.map(async (n) => [n.name, await readConntrack(ns(n.name))] as const)));
  for (const flow of flows) locateFlow(flow, conntrack);
  const dnatAfter = new Map(await Promise.all(nodesWithRuleChecks.map(async (n) => [n, await dnatCounters(ns(n))] as const)));
  const countersAfter = new Map(await Promise.all(nodesWithCounterChecks.map(async (n) => [n, await ruleCounters(ns(n))] as const)));
  const translatedAfter = new Map(await Promise.all(nodesWithTranslations.map(async (n) => [n, await translatedConnections(ns(n))] as const)));
  const evidence: Evidence = { packets, conntrack, dnatBefore, dnatAfter, countersBefore, countersAfter, translatedBefore, translatedAfter, flows };

  const paths: PathResult[] = [];
  for (const [key, g] of groups) {
    const mine = flows.filter((f) => f.group === key);
    for (const p of g.paths) {
      const flow = mine.find((f) => flowFitsPath(f, p));
      const steps: StepResult[] = [];
      for (const s of p.steps) steps.push(await checkStep(s, flow, mine, evidence));
      paths.push({ name: p.name, summary: p.summary, endpoint: p.endpoint, flow, steps });
    }
  }

  const all = paths.flatMap((p) => p.steps);
  const result: VerifyResult = {
    lab: t.lab,
    title: w.title,
    seed: w.seed,
    runDir,
    captures: Object.fromEntries(files),
    flows,
    paths,
    passed: all.filter((s) => s.status === 'pass').length,
    failed: all.filter((s) => s.status === 'fail').length,
    ms: Math.round(performance.now() - started),
  };
  writeFileSync(join(runDir, 'conntrack.txt'), [...conntrack].map(([n, e]) => `# ${n}\n${e.map((x) => x.text).join('\n')}`).join('\n\n') + '\n');
  writeFileSync(join(runDir, 'report.json'), `${JSON.stringify(result, null, 2)}\n`);
  return result;

  async function checkStep(step: Step, flow: Flow | undefined, groupFlows: Flow[], ev: Evidence): Promise<StepResult> {
    const s = nft && step.nftables ? { ...step, ...step.nftables } : step;
    const base = { step: s.step, title: s.title, at: s.at ?? '', note: s.note };
    if (s.skip || !s.expect) return { ...base, expected: s.skip ?? 'does not apply', seen: '', status: 'n/a' };
    const e = s.expect;
    const verdict = (ok: boolean, expected: string, seen: string): StepResult => ({ ...base, expected, seen, status: ok ? 'pass' : 'fail' });

    // Checks over the whole traffic group or all captures need no single flow.
    if (e.never) {
      const hits = [...ev.packets].flatMap(([point, pkts]) => pkts.filter((p) => p.src === e.never || p.dst === e.never).map((p) => `${point}: ${describePacket(p)}`));
      const total = [...ev.packets.values()].reduce((n, p) => n + p.length, 0);
      return verdict(hits.length === 0, `${e.never} on no packet`, hits[0] ?? `absent from all ${total} captured packets`);
    }
    if (e.share) {
      const answered = groupFlows.filter((f) => f.answer);
      const counts = e.share.endpoints.map((ep) => answered.filter((f) => f.answer!.pod === ep).length);
      const shares = counts.map((c) => (answered.length ? c / answered.length : 0));
      const ok = answered.length > 0 && shares.every((x) => x >= e.share!.min && x <= e.share!.max);
      const seen = e.share.endpoints.map((ep, i) => `${ep} ${counts[i]} (${Math.round(shares[i]! * 100)}%)`).join(', ');
      return verdict(ok, `each of ${e.share.endpoints.join(', ')} ${Math.round(e.share.min * 100)}-${Math.round(e.share.max * 100)}% of ${answered.length}`, seen);
    }
    if (e.sameEndpoint) {
      const pods = new Set(groupFlows.map((f) => f.answer?.pod ?? '(no answer)'));
      return verdict(pods.size === 1 && !pods.has('(no answer)'), `all ${groupFlows.length} requests reach one pod`, [...pods].join(', '));
    }

    if (!flow) return verdict(false, describeExpectation(s), 'no request of this path was seen (see flows in report.json)');
    const vars = flowVariables(flow);
    const pat = (x: string) => resolvePattern(x, vars);

    if (e.packet) {
      const src = pat(e.packet.src);
      const dst = pat(e.packet.dst);
      const expected = `${formatPattern(src, e.packet.src)} > ${formatPattern(dst, e.packet.dst)}${e.packet.flags ? ` [${e.packet.flags}]` : ''}`;
      const here = (ev.packets.get(s.at!) ?? []).filter((p) => packetInFlow(p, flow));
      const hit = here.find((p) => src && dst && addressMatches(src, p.src, p.sport) && addressMatches(dst, p.dst, p.dport) && (!e.packet!.flags || p.flags === e.packet!.flags));
      return verdict(Boolean(hit), expected, hit ? describePacket(hit) : here.length ? `not this one; first of ${here.length}: ${describePacket(here[0]!)}` : 'no packet of this connection');
    }
    if (e.noPacket) {
      // Any packet from or to the request's own source address and port counts too, so a
      // request that was never translated (dropped, or translated elsewhere) is still caught.
      const touchesClient = (p: TcpPacket) => `${p.src}:${p.sport}` === flow.client || `${p.dst}:${p.dport}` === flow.client;
      const here = (ev.packets.get(s.at!) ?? []).filter((p) => packetInFlow(p, flow) || touchesClient(p));
      return verdict(here.length === 0, 'no packet of this connection', here.length ? describePacket(here[0]!) : `none (of ${(ev.packets.get(s.at!) ?? []).length} captured here)`);
    }
    if (e.conntrack) {
      const o = e.conntrack.original;
      const r = e.conntrack.reply;
      const expected = `orig ${formatPattern(pat(o.src), o.src)} > ${formatPattern(pat(o.dst), o.dst)}, reply ${formatPattern(pat(r.src), r.src)} > ${formatPattern(pat(r.dst), r.dst)}`;
      const entries = ev.conntrack.get(s.at!) ?? [];
      const match = (p: string, ip: string, port: number) => {
        const a = pat(p);
        return a !== undefined && addressMatches(a, ip, port);
      };
      const hit = entries.find((x) => match(o.src, x.original.src, x.original.sport) && match(o.dst, x.original.dst, x.original.dport) && match(r.src, x.reply.src, x.reply.sport) && match(r.dst, x.reply.dst, x.reply.dport));
      const mine = flow.conntrack && flow.conntrack.node === s.at ? flow.conntrack.entry : undefined;
      const show = (x: ConntrackEntry) => `orig ${x.original.src}:${x.original.sport} > ${x.original.dst}:${x.original.dport}, reply ${x.reply.src}:${x.reply.sport} > ${x.reply.dst}:${x.reply.dport}`;
      return verdict(Boolean(hit), expected, hit ? show(hit) : mine ? show(mine) : flow.conntrack ? `entry is on ${flow.conntrack.node}, not ${s.at}` : 'no entry');
    }
    if (e.answer) {
      const want = pat(e.answer.client);
      const saw = flow.answer?.client;
      const addr = saw ? saw.slice(0, saw.lastIndexOf(':')) : '';
      const port = saw ? Number(saw.slice(saw.lastIndexOf(':') + 1)) : 0;
      return verdict(Boolean(want && saw && addressMatches(want, addr, port)), `pod saw client ${formatPattern(want, e.answer.client)}`, saw ? `${flow.answer!.pod} saw ${saw}` : 'no answer');
    }
    if (e.noAnswer) {
      return verdict(!flow.answer, 'no answer (dropped)', flow.answer ? `answered by ${flow.answer.pod}` : (flow.error ?? 'no answer'));
    }
    if (e.route) {
      const to = pat(e.route.to);
      const { stdout } = await runIn(ns(s.at!), 'ip', ['-j', 'route', 'get', to?.ip ?? '0.0.0.0'], { allowFailure: true });
      let dev = '';
      try {
        dev = (JSON.parse(stdout) as { dev?: string }[])[0]?.dev ?? '';
      } catch {
        /* no route */
      }
      return verdict(dev === e.route.dev, `route to ${to?.ip} leaves via ${e.route.dev}`, dev ? `via ${dev}` : 'no route');
    }
    if (e.dnatRule && nft) {
      // No counters in nftables mode: the endpoint chain that DNATs there, and this run's connections it translated (conntrack).
      const to = pat(e.dnatRule.to);
      const key = to ? `${to.ip}:${to.port}` : '';
      const chains = (await nftDnatChains(ns(s.at!))).get(key) ?? [];
      const before = ev.translatedBefore.get(s.at!)?.get(key) ?? new Set<string>();
      const fresh = [...(ev.translatedAfter.get(s.at!)?.get(key) ?? [])].filter((c) => !before.has(c));
      const seen = chains.length ? `${chains.join(', ')}: dnat to ${key}; ${fresh.length} new connection${fresh.length === 1 ? '' : 's'} translated there (conntrack)` : `no endpoint chain dnats to ${key}`;
      return verdict(chains.length > 0 && fresh.length >= 1, `an endpoint chain's "dnat to ${key}" translated this run's connection`, seen);
    }
    if (e.dnatRule) {
      const to = pat(e.dnatRule.to);
      const key = to ? `${to.ip}:${to.port}` : '';
      const before = ev.dnatBefore.get(s.at!)?.get(key) ?? 0;
      const after = ev.dnatAfter.get(s.at!)?.get(key);
      const sentThere = ev.flows.filter((f) => f.conntrack?.node === s.at && flowVariables(f).pod === key).length;
      const seen = after === undefined ? 'no such rule' : `counter +${after - before}${sentThere > 0 ? ` (${sentThere} connection${sentThere === 1 ? '' : 's'} of this run went there)` : ''}`;
      return verdict(after !== undefined && after - before >= 1, `DNAT --to-destination ${key} counts this connection`, seen);
    }
    if (e.rule && nft) {
      const want = e.rule.nftables;
      if (!want) return verdict(false, `an nftables counterpart of ${e.rule.chain} -j ${e.rule.jump}`, 'the walkthrough names none (rule.nftables)');
      const target = flow.target.slice(flow.target.lastIndexOf(':') + 1);
      const elements = (await nftMapElements(ns(s.at!))).filter((x) => x.map === want.map && x.key.split(' . ').includes(target));
      const hit = elements.find((x) => x.verdict === want.verdict);
      const show = (x: (typeof elements)[number]) => `@${x.map} { ${x.key}${x.comment ? ` comment "${x.comment}"` : ''} : ${x.verdict} }`;
      return verdict(Boolean(hit), `@${want.map} holds port ${target} : ${want.verdict}`, hit ? show(hit) : elements[0] ? show(elements[0]) : `no element for port ${target} in @${want.map}`);
    }
    if (e.rule) {
      const key = `${e.rule.table} ${e.rule.chain} ${e.rule.jump}`;
      const before = ev.countersBefore.get(s.at!)?.get(key);
      const after = ev.countersAfter.get(s.at!)?.get(key);
      const expected = `${e.rule.table} ${e.rule.chain} -j ${e.rule.jump} counts packets`;
      if (!after) return verdict(false, expected, `no such rule on ${s.at}`);
      const delta = after.packets - (before?.packets ?? 0);
      return verdict(delta >= 1, expected, `counter +${delta}${after.comment ? ` ("${after.comment}")` : ''}`);
    }
    if (e.recent) {
      const client = pat(e.recent.client);
      const endpoint = pat(e.recent.endpoint);
      const want = endpoint ? `${endpoint.ip}:${endpoint.port}` : '';
      const what = nft ? 'affinity set' : 'recent list of the KUBE-SEP';
      const expected = `${what} for ${want} holds ${client?.ip}, no other does`;
      const lists = await (nft ? affinitySets : recentLists)(ns(s.at!));
      const holding = lists.filter((l) => client && l.sources.includes(client.ip));
      const ok = holding.length === 1 && holding[0]!.endpoint === want;
      const seen = holding.length ? holding.map((l) => `${l.name} (${l.endpoint}) holds ${client?.ip}`).join('; ') : `${client?.ip} in none of ${lists.length} lists`;
      return verdict(ok, expected, seen);
    }
    return verdict(false, 'unknown check', '');
  }
}

/** The flow a path describes: its outcome or answering pod, and the node that translated it (via). */
function flowFitsPath(f: Flow, p: WalkthroughPath): boolean {
  const outcome = p.outcome === 'no-answer' ? !f.answer : p.endpoint === ANY_ENDPOINT ? Boolean(f.answer) : f.answer?.pod === p.endpoint;
  return outcome && (!p.via || f.conntrack?.node === p.via);
}

/** Find the node whose conntrack table holds a flow, by its original tuple. */
function locateFlow(flow: Flow, tables: Map<string, ConntrackEntry[]>): void {
  for (const [node, entries] of tables) {
    const entry = entries.find((e) => `${e.original.src}:${e.original.sport}` === flow.client && `${e.original.dst}:${e.original.dport}` === flow.target);
    if (entry) {
      flow.conntrack = { node, entry };
      return;
    }
  }
}

function describeExpectation(s: Step): string {
  const e = s.expect;
  if (!e) return '';
  if (e.packet) return `${e.packet.src} > ${e.packet.dst}`;
  return Object.keys(e).join(', ');
}
