import { untilLinkLocalSettled } from '../kernel/ipv6-ready.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';
import { log } from '../log.js';
import { addTraceRules, expectedAdds, removeTraceRules, removeTraceRulesSync, startMonitor, stopMonitor, untilMonitorListens, untilMonitors, type RawTableGuard, type TraceMonitor } from '../kernel/netfilter-trace.js';
import { nextSourcePort, portsInUse } from '../kernel/ports.js';
import { forgetTrace, recordTrace, sweepDeadTrace } from '../kernel/stale-trace.js';
import { openDropTrace, sweepInstances, type DropTrace } from '../kernel/drop-trace.js';
import { planNetwork } from '../plan/network.js';
import { connectionDrops, deviceNames, kernelDrops, labDevicesOf, parseKernelEvents, type PacketDrop } from '../trace/drops.js';
import { preflight, requireRoot } from '../kernel/preflight.js';
import { runIn } from '../kernel/exec.js';
import { readConntrack, readRules } from '../kernel/readers.js';
import type { Topology } from '../topology/schema.js';
import { namespaceName } from '../topology/names.js';
import type { ProxyMode } from '../trace/events.js';
import { ownTable, traceTag, type TraceSpec } from '../trace/rules.js';
import { withTunnelHops } from '../trace/tunnel.js';
import { buildWalk, type WalkHop } from '../trace/walk.js';
import { ip6tablesRuleTexts, withIp6tablesText } from '../trace/ip6tables-text.js';
import { isIPv6Traffic, senderAddress, type Flow } from '../verify/flows.js';
import { locateFlow } from '../verify/paths.js';
import { sendDatagram, sendRequest } from '../verify/traffic.js';
import { loadWalkthrough, type Traffic } from '../verify/walkthrough.js';
import { lockHolder, withLabLock } from '../state/lock.js';
import { labDir } from '../state/store.js';
import { checkTarget } from '../util/target.js';
import { runningLab } from './running.js';

export interface TraceOptions {
  from?: string;
  to?: string;
  proto?: 'tcp' | 'udp';
  onProgress?: (text: string) => void;
  /** Called once when another command holds the lab and the trace waits for it. */
  onWait?: (text: string) => void;
}

export interface TraceResult {
  lab: string;
  mode: ProxyMode;
  from: string;
  to: string;
  proto: 'tcp' | 'udp';
  flow: Flow;
  /** The namespaces traced (nodes and routers: the ones with netfilter rules of their own). */
  traced: string[];
  hops: WalkHop[];
  /** Where a packet of the connection died, with the kernel's reason (skb:kfree_skb). */
  drops: PacketDrop[];
  /** Why drops could not be watched, when they could not (no tracefs): the trace goes on without. */
  dropsUnavailable?: string;
  ms: number;
}

/** kube-proxy's mode for this topology (kubeProxy.mode, iptables by default). */
export function proxyMode(t: Topology): ProxyMode {
  return t.kubeProxy.mode;
}

/** The traffic a trace sends: the options, else the walkthrough's first traffic. */
function traceTraffic(lab: string, opts: TraceOptions): { topology: Topology; from: string; to: string } {
  if (opts.to !== undefined) checkTarget('--to', opts.to);
  const running = runningLab(lab);
  let { from, to } = opts;
  if (!from || !to) {
    if (!running.fileTopology.walkthrough) throw new LabError(`lab "${lab}" has no walkthrough to take the traffic from: give --from and --to`, ExitCode.badInput);
    const { walkthrough } = loadWalkthrough(running.fileTopology, running.path);
    from ??= walkthrough.traffic.from;
    to ??= walkthrough.traffic.to;
  }
  const t = running.topology;
  if (![...t.clients, ...t.pods].some((h) => h.name === from)) throw new LabError(`--from ${from}: no client or pod of that name in lab "${lab}"`, ExitCode.badInput);
  checkTarget('--to', to);
  const sender = [...t.clients, ...t.pods].find((h) => h.name === from)!;
  if (isIPv6Traffic(to) && (!senderAddress(sender, to) || !t.cluster.podCIDR6)) throw new LabError(`--to ${to}: an IPv6 destination needs an IPv6 address on ${from} (address6) and cluster.podCIDR6 in lab "${lab}"`, ExitCode.badInput);
  return { topology: t, from, to };
}

/**
 * Send one new connection and record the kernel's own netfilter trace of it in every node and
 * router: the chains and rules each of its first packets met, and how its addresses changed.
 * The trace's rules and monitors are removed on every way out, Ctrl-C and SIGTERM included.
 */
export async function trace(lab: string, opts: TraceOptions = {}): Promise<TraceResult> {
  const started = performance.now();
  requireRoot(); // before the lock: its files are root's
  // The lab's lock, as the verbs that change it take it: a scale running meanwhile deletes and
  // rewrites the chains the monitors look rules up in ("error: No such file or directory"), and a
  // second trace's removed rules, or its cleanup of the raw table, would do the same.
  const holder = lockHolder(lab);
  if (holder && holder.pid !== process.pid) opts.onWait?.(`waiting for lab ${lab}: ${holder.verb} by pid ${holder.pid} holds it since ${holder.since}`);
  return withLabLock(lab, 'trace', () => traceLocked(lab, opts, traceTraffic(lab, opts), started));
}

async function traceLocked(lab: string, opts: TraceOptions, target: ReturnType<typeof traceTraffic>, started: number): Promise<TraceResult> {
  const { topology: t, from, to } = target;
  const proto = opts.proto ?? 'tcp';
  const mode = proxyMode(t);
  const ipv6 = isIPv6Traffic(to);
  const tools = ipv6 ? ['ip6tables-restore', 'ip6tables-save', 'sh'] : ['iptables-restore', 'iptables-save', 'xtables-monitor', 'sh'];
  preflight(['ip', 'curl', 'stdbuf', 'nft', ...(mode === 'iptables' ? tools : [])]);
  const sender = [...t.clients, ...t.pods].find((h) => h.name === from)!;
  const port = nextSourcePort(await portsInUse(namespaceName(t.lab, sender.name)));
  // IPv6: the sender's IPv6 address and the IPv6 pod range; the rules go in the ip6 family.
  const spec: TraceSpec = ipv6
    ? { tag: traceTag(port), proto, clientIP: senderAddress(sender, to)!, clientPort: port, podCIDR: t.cluster.podCIDR6!, ipv6 }
    : { tag: traceTag(port), proto, clientIP: sender.address, clientPort: port, podCIDR: t.cluster.podCIDR };
  const hosts = [...t.nodes, ...t.routers].map((h) => h.name);
  const ns = (h: string) => namespaceName(t.lab, h);

  const monitors: TraceMonitor[] = [];
  const guard: RawTableGuard = { madeRaw: (namespace) => join(labDir(lab), `trace-made-raw.${namespace}`) };
  const applied = new Set<string>();
  // A trace SIGKILLed earlier left its rules and monitors: sweep them, then say who we are in case it happens to us.
  const record = join(labDir(lab), 'trace-running.json');
  await sweepDeadTrace(record, guard, hosts.map(ns));
  sweepInstances(labDir(lab), true);
  const devices = labDevicesOf(planNetwork(t));
  let dropTrace: DropTrace | undefined;
  const recorded = { mode, spec, namespaces: hosts.map(ns) };
  recordTrace(record, recorded);
  // An exiting process cannot await: remove whatever is in place synchronously, kill the monitors.
  const onExit = () => {
    for (const h of applied) removeTraceRulesSync(ns(h), mode, spec, guard);
    for (const m of monitors) m.child.kill('SIGKILL');
    dropTrace?.close();
    forgetTrace(record);
  };
  process.once('exit', onExit);
  try {
    opts.onProgress?.(`starting ${hosts.length} trace monitors`);
    for (const h of hosts) monitors.push(startMonitor(ns(h), mode, spec, started));
    recordTrace(record, recorded, monitors);
    await Promise.all(monitors.map(untilMonitorListens));
    // Every monitor hears changes now; once each prints our own rules arriving, send.
    await Promise.all(
      hosts.map(async (h) => {
        applied.add(h);
        await addTraceRules(ns(h), mode, spec, guard);
      }),
    );
    await untilMonitors(monitors, (p) => p.added >= expectedAdds(mode, spec), 'saw the trace rules arrive');
    if (ipv6) await untilLinkLocalSettled([...t.clients, ...t.pods, ...t.nodes, ...t.routers].map((h) => ns(h.name)));
    opts.onProgress?.(`sending ${from} -> ${to} from port ${port}`);
    // The drop tracepoint is on only around the traffic itself.
    const opened = openDropTrace(labDir(lab), lab, deviceNames(devices), ipv6);
    if ('instance' in opened) dropTrace = opened;
    dropTrace?.mark(`send ${spec.tag}`);
    const traffic: Traffic = { from, to, requests: 1, maxRequests: 1, timeout: 1 };
    const service = t.services.find((s) => s.ports.some((p) => p.protocol === 'TCP')) ?? t.services[0];
    const dnsName = service ? `${service.name}.${service.namespace}.svc.${t.cluster.domain}` : `kubernetes.default.svc.${t.cluster.domain}`;
    const flow = proto === 'udp' ? await sendDatagram(ns(from), from, to, port, spec.clientIP, dnsName) : await sendRequest(ns(from), traffic, 'trace', 0, port, spec.clientIP);
    dropTrace?.mark(`sent ${spec.tag}`);
    const kernelText = dropTrace?.read() ?? '';
    dropTrace?.close();
    locateFlow(flow, Object.fromEntries(await Promise.all(t.nodes.map(async (n) => [n.name, await readConntrack(ns(n.name), proto)] as const))));
    // Removing the rules is also the end marker: once each monitor prints the removal, every
    // trace line of this connection before it has been read.
    await Promise.all(hosts.map((h) => removeTraceRules(ns(h), mode, spec, guard).then(() => applied.delete(h))));
    await untilMonitors(monitors, (p) => p.deleted >= (mode === 'nftables' ? 1 : expectedAdds(mode, spec)), 'saw the trace rules go');
    const listings = mode === 'iptables' && ipv6 ? await Promise.all(hosts.map((h) => ip6tablesListings(ns(h)))) : [];
    const passes = Object.fromEntries(
      monitors.map((m, i) => {
        const parsed = m.parse().passes.map((p) => ({ ...p, packet: { ...p.packet, proto } }));
        return [hosts[i]!, listings[i] ? withIp6tablesText(parsed, listings[i]) : parsed];
      }),
    );
    const hops = withTunnelHops(buildWalk(passes, flow, ownTable(mode, spec)), t);
    // A developer's hook for saving real monitor output as test fixtures.
    if (process.env.LAB_TRACE_DUMP) {
      dumpMonitors(process.env.LAB_TRACE_DUMP, mode, hosts, monitors, flow, spec);
      if (listings.length) await dumpIp6tables(process.env.LAB_TRACE_DUMP, hosts, ns);
      writeFileSync(join(process.env.LAB_TRACE_DUMP, 'kernel-drops.txt'), kernelText);
    }
    const drops = connectionDrops(kernelDrops(parseKernelEvents(kernelText), devices, `send ${spec.tag}`, `sent ${spec.tag}`), hops, ns);
    const unavailable = 'unavailable' in opened ? { dropsUnavailable: opened.unavailable } : {};
    return { lab, mode, from, to, proto, flow, traced: hosts, hops, drops, ...unavailable, ms: Math.round(performance.now() - started) };
  } finally {
    await Promise.all([...applied].map((h) => removeTraceRules(ns(h), mode, spec, guard)));
    await Promise.all(monitors.map(stopMonitor));
    dropTrace?.close();
    forgetTrace(record);
    process.removeListener('exit', onExit);
    log.debug({ lab, tag: spec.tag }, 'trace cleaned up');
  }
}

const IP6TABLES_TABLES = ['nat', 'filter', 'mangle'] as const;

/** Per table, each rule's ip6tables-save text by chain and nft handle (lab/trace/ip6tables-text.ts). */
async function ip6tablesListings(namespace: string): Promise<Record<string, Map<string, string>>> {
  const read = async (table: string) => {
    const [list, save] = await Promise.all([runIn(namespace, 'nft', ['-a', 'list', 'table', 'ip6', table], { allowFailure: true }), readRules(namespace, { table, ipv6: true })]);
    return [table, ip6tablesRuleTexts(list.stdout, save)] as const;
  };
  return Object.fromEntries(await Promise.all(IP6TABLES_TABLES.map(read)));
}

async function dumpIp6tables(dir: string, hosts: string[], ns: (h: string) => string): Promise<void> {
  for (const h of hosts) {
    for (const table of IP6TABLES_TABLES) {
      writeFileSync(join(dir, `${h}.nft-ip6-${table}.txt`), (await runIn(ns(h), 'nft', ['-a', 'list', 'table', 'ip6', table], { allowFailure: true })).stdout);
      writeFileSync(join(dir, `${h}.ip6tables-${table}.txt`), await readRules(ns(h), { table, ipv6: true }));
    }
  }
}

function dumpMonitors(dir: string, mode: ProxyMode, hosts: string[], monitors: TraceMonitor[], flow: Flow, spec: TraceSpec): void {
  mkdirSync(dir, { recursive: true });
  monitors.forEach((m, i) => writeFileSync(join(dir, `${hosts[i]}.${mode}.txt`), m.text));
  writeFileSync(join(dir, 'flow.json'), `${JSON.stringify({ flow, spec }, null, 2)}\n`);
}
