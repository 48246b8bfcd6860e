import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePcap, type TcpPacket } from '../capture/pcap.js';
import type { StreamLine } from '../capture/stream.js';
import { ExitCode, LabError } from '../errors.js';
import { readConntrack } from '../kernel/readers.js';
import { isOurs } from '../kernel/processes.js';
import { pathHops, type PathHops } from '../picture/hops.js';
import { readState } from '../state/store.js';
import { namespaceName } from '../topology/names.js';
import type { Topology } from '../topology/schema.js';
import type { WalkHop } from '../trace/walk.js';
import type { Flow } from '../verify/flows.js';
import { capturePoints } from '../ui/picture.js';
import { capture } from './capture.js';
import { runningLab } from './running.js';
import { trace } from './trace.js';

/**
 * What the live page may ask of a lab: a fixed set of the lab's own actions, each taking only
 * values it checks against the lab itself (a sender is one of its clients or pods, a destination
 * one of the addresses listed here). No text from the page ever reaches a command line.
 */

export interface Destination {
  /** ip:port */
  to: string;
  proto: 'tcp' | 'udp';
  /** What it is: "Service web ClusterIP", "NodePort on node1", "pod web-1". */
  what: string;
}

/** Every address of the lab a request can be sent to: Service IPs, NodePorts, LB and external IPs, and each pod's ports. */
export function destinations(t: Topology, podPorts: (pod: string) => number[]): Destination[] {
  const out: Destination[] = [];
  for (const s of t.services) {
    for (const p of s.ports) {
      const proto = p.protocol === 'UDP' ? 'udp' : 'tcp';
      const name = `${s.name}${p.name ? `:${p.name}` : ''}`;
      out.push({ to: `${s.clusterIP}:${p.port}`, proto, what: `Service ${name} ClusterIP` });
      if (p.nodePort !== undefined && s.type !== 'ClusterIP') for (const n of t.nodes) out.push({ to: `${n.address}:${p.nodePort}`, proto, what: `Service ${name} NodePort on ${n.name}` });
      for (const ip of s.loadBalancerIPs) out.push({ to: `${ip}:${p.port}`, proto, what: `Service ${name} load balancer IP` });
      for (const ip of s.externalIPs) out.push({ to: `${ip}:${p.port}`, proto, what: `Service ${name} external IP` });
    }
  }
  for (const pod of t.pods) {
    const udp = pod.workload === 'dns';
    for (const port of podPorts(pod.name)) out.push({ to: `${pod.address}:${port}`, proto: udp ? 'udp' : 'tcp', what: `pod ${pod.name}` });
  }
  return out;
}

export const senders = (t: Topology) => [...t.clients, ...t.pods].map((h) => h.name);

export interface PodLive {
  name: string;
  node: string;
  ready: boolean;
  terminating: boolean;
  /** Its workload serves (not stopped by `lab kill`, and the lab's workload process alive). */
  running: boolean;
}

/** The pods as the lab's state has them now: readiness from `lab kill`/`revive`, the workload process alive. */
export function podsLive(lab: string): { up: boolean; pods: PodLive[] } {
  const state = readState(lab);
  if (!state || state.phase !== 'up') return { up: false, pods: [] };
  const { topology } = runningLab(lab);
  const hostAlive = state.workloadHost ? isOurs(state.workloadHost) : false;
  return {
    up: true,
    pods: topology.pods.map((p) => {
      const rec = state.processes.find((r) => r.pod === p.name);
      return { name: p.name, node: p.node, ready: p.ready, terminating: p.terminating, running: Boolean(rec && !rec.stopped && hostAlive) };
    }),
  };
}

export interface LabView {
  lab: string;
  topology: Topology;
  senders: string[];
  destinations: Destination[];
  nodes: string[];
}

export function labView(lab: string): LabView {
  const running = runningLab(lab);
  const t = running.topology;
  const ports = (pod: string) => running.state.processes.find((p) => p.pod === pod)?.ports ?? [];
  return { lab, topology: t, senders: senders(t), destinations: destinations(t, ports), nodes: t.nodes.map((n) => n.name) };
}

/** A request as the page asks for it, checked against the lab: the sender and the destination must be the lab's own. */
export function checkedRequest(view: LabView, body: unknown): { from: string; to: string; proto: 'tcp' | 'udp' } {
  const b = (body ?? {}) as Record<string, unknown>;
  const from = typeof b.from === 'string' ? b.from : '';
  const to = typeof b.to === 'string' ? b.to : '';
  if (!view.senders.includes(from)) throw new LabError(`from: "${from.slice(0, 40)}" is not a client or pod of lab ${view.lab}`, ExitCode.badInput);
  const dest = view.destinations.find((d) => d.to === to);
  if (!dest) throw new LabError(`to: "${to.slice(0, 40)}" is not a Service address, NodePort or pod of lab ${view.lab}`, ExitCode.badInput);
  return { from, to, proto: dest.proto };
}

export interface WalkEvents {
  /** A packet one of the live captures saw, as tcpdump decoded it. */
  onPacket: (line: StreamLine) => void;
  onProgress: (text: string) => void;
}

export interface SentWalk {
  flow: Flow;
  /** The connection's first packet each way at every capture point, in wire order. */
  hops: PathHops;
  /** The kernel's netfilter trace: per namespace, the chains and rules it met. */
  trace: WalkHop[];
  /** The node whose conntrack table holds the connection. */
  natNode?: string;
  ms: number;
}

/** Ports the page's live capture leaves out: routing daemons' sessions and health check probes, which never stop. */
function quietFilter(t: Topology): string {
  const noisy = [179, ...t.services.flatMap((s) => (s.healthCheckNodePort ? [s.healthCheckNodePort] : []))];
  return `(tcp or udp) and not (${noisy.map((p) => `port ${p}`).join(' or ')})`;
}

const QUIET_MS = 300;
const DRAIN_MS = 1500;

/** Resolves once no line has arrived for `quiet` ms (tcpdump hands packets over in blocks), or after `limit` ms. */
async function quietFor(last: () => number, quiet: number, limit: number): Promise<void> {
  const start = performance.now();
  while (performance.now() - start < limit && performance.now() - Math.max(last(), start) < quiet) await new Promise((resolve) => setTimeout(resolve, 50));
}

/**
 * Send one request the way `lab trace` does, with live captures at every interface of the lab
 * around it: capture lines stream out as tcpdump prints them, then the walk from the pcaps and
 * the rule trace. The trace holds the lab's lock while its rules are in place.
 */
export async function sendAndWalk(lab: string, req: { from: string; to: string; proto: 'tcp' | 'udp' }, events: WalkEvents): Promise<SentWalk> {
  const { topology } = runningLab(lab);
  const dir = mkdtempSync(join(tmpdir(), 'lab-ui-'));
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  let ready!: () => void;
  const listening = new Promise<void>((resolve) => (ready = resolve));
  const points = capturePoints(topology);
  let lastLine = 0;
  const onLine = (line: StreamLine) => {
    lastLine = performance.now();
    events.onPacket(line);
  };
  const captured = capture(lab, points, { filter: quietFilter(topology), write: dir, onLine, onReady: () => ready(), stop: stopped });
  try {
    events.onProgress(`starting ${points.length} captures`);
    await Promise.race([listening, captured]);
    const result = await trace(lab, { ...req, onProgress: events.onProgress, onWait: events.onProgress });
    await quietFor(() => lastLine, QUIET_MS, DRAIN_MS);
    stop();
    const summary = await captured;
    const packets: Record<string, TcpPacket[]> = Object.fromEntries(summary.files.map((f, i) => [summary.points[i]!, parsePcap(readFileSync(f))]));
    return { flow: result.flow, hops: pathHops(result.flow, packets), trace: result.hops, natNode: result.flow.conntrack?.node, ms: result.ms };
  } finally {
    stop();
    await captured.catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A node's conntrack table, TCP and UDP, one line per connection as `conntrack -L` prints it. */
export async function conntrackLines(lab: string, node: string): Promise<string[]> {
  const { topology } = runningLab(lab);
  if (!topology.nodes.some((n) => n.name === node)) throw new LabError(`node: "${node.slice(0, 40)}" is not a node of lab ${lab}`, ExitCode.badInput);
  const ns = namespaceName(lab, node);
  const [tcp, udp] = await Promise.all([readConntrack(ns, 'tcp'), readConntrack(ns, 'udp')]);
  return [...tcp, ...udp].map((e) => e.text);
}
