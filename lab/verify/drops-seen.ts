import { log } from '../log.js';
import { openDropTrace, sweepInstances, type DropTrace } from '../kernel/drop-trace.js';
import { readNftText, readRuleCounters } from '../kernel/readers.js';
import { planNetwork } from '../plan/network.js';
import type { ParsedRule } from '../plan/kube-proxy/rules.js';
import { labDir } from '../state/store.js';
import type { Topology } from '../topology/schema.js';
import { deviceNames, kernelDrops, labDevicesOf, meaningOf, onPath, parseKernelEvents, type LabDevices } from '../trace/drops.js';
import { splitAddress, type Flow } from './flows.js';
import { iptablesDropRule, nftDropRule } from './nat-rules.js';

/**
 * Why a verify request got no answer, in the kernel's own words: the skb:kfree_skb tracepoint
 * (the drop trace lab trace uses, its own tracefs instance, on only while verify's traffic is
 * sent) with a marker around each request, so each drop is tied to the request it belongs to;
 * for a netfilter drop, the rule on that node whose counter rose (iptables) or whose element
 * names the packet's address (nftables). Only requests that got no answer keep their drops.
 */

export interface SeenDrop {
  /** The kernel's name for it: NETFILTER_DROP, IP_INNOROUTES, … */
  reason: string;
  meaning: string;
  host: string;
  netns: string;
  device?: string;
  location: string;
  count: number;
  /** For a netfilter drop on a node: the rule that dropped it, as its tool prints it. */
  rule?: string;
}

export interface VerifyDropTrace {
  /** Around one request (by its index among the run's flows). */
  before(index: number): void;
  after(index: number): void;
  /** Stop, read and remove the instance; per unanswered flow (by its client ip:port), its drops. */
  finish(flows: Flow[], ns: (host: string) => string): Record<string, Omit<SeenDrop, 'rule'>[]>;
  close(): void;
  /** Why there is no drop trace, when there is none. */
  unavailable?: string;
}

const sendMark = (i: number) => `verify send #${i}.`;
const sentMark = (i: number) => `verify sent #${i}.`;

/** Tie each unanswered flow's window of kernel events to its drops on lab hosts. Pure. */
export function dropsOfFlows(text: string, devices: LabDevices, flows: Flow[], netnsOf: (host: string) => string): Record<string, Omit<SeenDrop, 'rule'>[]> {
  const events = parseKernelEvents(text);
  const out: Record<string, Omit<SeenDrop, 'rule'>[]> = {};
  for (const f of flows) {
    if (f.answer || f.datagram) continue;
    const seen: Omit<SeenDrop, 'rule'>[] = [];
    for (const k of kernelDrops(events, devices, sendMark(f.index), sentMark(f.index))) {
      if (!k.host || !onPath(k.reason)) continue;
      const same = seen.find((s) => s.host === k.host && s.reason === k.reason && s.device === k.device && s.location === k.location);
      if (same) same.count++;
      else seen.push({ reason: k.reason, meaning: meaningOf(k.reason), host: k.host, netns: netnsOf(k.host), ...(k.device ? { device: k.device } : {}), location: k.location, count: 1 });
    }
    if (seen.length) out[f.client] = seen;
  }
  return out;
}

/** Before the drop trace opens: marks nothing. */
export const noDropTrace: VerifyDropTrace = { before: () => {}, after: () => {}, finish: () => ({}), close: () => {} };

/** Open the drop trace for a verify run; a trace that cannot open says why and records nothing. */
export function openVerifyDropTrace(t: Topology): VerifyDropTrace {
  const started = performance.now();
  sweepInstances(labDir(t.lab), true);
  const devices = labDevicesOf(planNetwork(t));
  const opened = openDropTrace(labDir(t.lab), t.lab, deviceNames(devices));
  const trace: DropTrace | undefined = 'instance' in opened ? opened : undefined;
  // An exiting process cannot await: the instance goes synchronously (a SIGKILL leaves it to lab down's sweep).
  const close = () => {
    trace?.close();
    process.removeListener('exit', close);
  };
  if (trace) process.once('exit', close);
  log.debug({ ms: Math.round(performance.now() - started), ...('unavailable' in opened ? { unavailable: opened.unavailable } : {}) }, 'verify drop trace opened');
  return {
    before: (i) => trace?.mark(sendMark(i)),
    after: (i) => trace?.mark(sentMark(i)),
    finish: (flows, ns) => {
      const read = performance.now();
      const text = trace?.read() ?? '';
      close();
      const drops = dropsOfFlows(text, devices, flows, ns);
      log.debug({ ms: Math.round(performance.now() - read), unanswered: Object.keys(drops).length }, 'verify drop trace read and removed');
      return drops;
    },
    close,
    ...('unavailable' in opened ? { unavailable: opened.unavailable } : {}),
  };
}

/**
 * Name the rule of each netfilter drop on a node: one rule read of that node after the traffic
 * (iptables: against the counters read before it, see light-trace.ts).
 */
export async function withDroppingRules(t: Topology, drops: Record<string, Omit<SeenDrop, 'rule'>[]>, flows: Flow[], ns: (host: string) => string, before: Record<string, ParsedRule[]>): Promise<Record<string, SeenDrop[]>> {
  const nodes = [...new Set(Object.values(drops).flat().filter((d) => d.reason === 'NETFILTER_DROP' && t.nodes.some((n) => n.name === d.host)).map((d) => d.host))];
  const nft = t.kubeProxy.mode === 'nftables';
  const rules = new Map(await Promise.all(nodes.map(async (n) => [n, nft ? await readNftText(ns(n)) : await readRuleCounters(ns(n))] as const)));
  const out: Record<string, SeenDrop[]> = {};
  for (const [client, list] of Object.entries(drops)) {
    const flow = flows.find((f) => f.client === client);
    out[client] = list.map((d) => {
      const r = rules.get(d.host);
      if (!flow || d.reason !== 'NETFILTER_DROP' || r === undefined) return d;
      const to = splitAddress(flow.target);
      const p = { src: splitAddress(flow.client).ip, dst: to.ip, dport: to.port, proto: 'tcp', local: t.nodes.filter((n) => n.name === d.host).map((n) => n.address) };
      const rule = typeof r === 'string' ? nftDropRule(r, p) : iptablesDropRule(r, before[d.host] ?? [], p);
      return rule ? { ...d, rule } : d;
    });
  }
  return out;
}
