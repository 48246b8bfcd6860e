import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';
import { run } from '../kernel/exec.js';
import { readNextHops } from '../kernel/readers.js';
import { announcementChanges, loadBalancerOf, type Announcement, type AnnouncementChange, type NeighbourExpectation, type RouteExpectation } from '../plan/load-balancer/index.js';
import { podNetworkOf } from '../plan/pod-network/index.js';
import { isThatBird } from '../kernel/bird.js';
import { labDir, readState, type LabState, type LabStore } from '../state/store.js';
import type { DaemonSpec } from '../plan/pod-network/types.js';
import { restartDaemons } from './pod-network-daemons.js';
import type { Topology } from '../topology/schema.js';
import { throwIfInterrupted } from '../util/interrupt.js';
import { recordTakeover, type TakeoverRecord } from '../capture/takeover.js';
import type { ObservationPoint } from '../capture/tcpdump.js';
import { namespaceName, networkBridgeName } from '../topology/names.js';

/**
 * The load balancer mode's side of a sync (MetalLB's speakers): each node's BIRD is given its new
 * configuration when what it announces changed (`birdc configure`: the BGP sessions stay up, only
 * the static routes it originates change), then the verb reads the router's routes until they
 * are what the announcements lead to. Nothing to do in static mode.
 */

/** Where one router's route for a LoadBalancer IP stood once the lab stopped waiting for it. */
export interface AnnouncedRoute extends RouteExpectation {
  /** The next hops read from the router's namespace. */
  have: string[];
  /** `have` matched `via` before the deadline. */
  settled: boolean;
  /** From the reconfiguration to the route matching (or to the deadline). */
  ms: number;
}

export interface AnnouncementSync {
  announcements: Announcement[];
  /** Per IP and node: what this sync announced or withdrew. */
  changes: AnnouncementChange[];
  /** The hosts whose speaker was given its new announcements. */
  reconfigured: string[];
  /** The hosts whose speaker is not running (it died): their announcements wait for lab down and up. */
  notRunning: string[];
  /** The speakers (BIRD or ARP speaker) found dead and started again by this sync, with their new pids, once ready. */
  restarted: { host: string; name: string; pid: number; ms: number }[];
  routes: AnnouncedRoute[];
  /** l2: each router's neighbour entry for each IP, once it held the leader's MAC (or had no entry). */
  neighbours: NeighbourFollow[];
}

export interface NeighbourFollow extends NeighbourExpectation {
  /** The leader's eth0 MAC, and the MAC the router's entry held last (undefined: no entry). */
  mac: string | undefined;
  have: string | undefined;
  settled: boolean;
  ms: number;
}

/** MetalLB's speakers and the router follow within this (BGP sends an UPDATE at once; the rest is process start-up on a loaded machine). */
export const ANNOUNCE_DEADLINE_MS = Number(process.env.LAB_ANNOUNCE_DEADLINE_MS) || 2000;
const POLL_MS = 10;
const UP_DEADLINE_MS = 10_000;

/**
 * `store` given (the endpoint verbs): a speaker whose process is gone is started again, by pid,
 * with the current announcements, and awaited until ready before the routers are.
 */
export async function syncAnnouncements(before: Topology | undefined, after: Topology, deadlineMs = ANNOUNCE_DEADLINE_MS, store?: LabStore): Promise<AnnouncementSync> {
  const lb = loadBalancerOf(after);
  const announcements = lb.announcements(after);
  const changes = before ? announcementChanges(lb.announcements(before), announcements) : [];
  const follow = async () => {
    const restarted = store ? await restartDeadSpeakers(after, store) : [];
    const started = performance.now();
    const { reconfigured, notRunning } = before ? await reconfigureSpeakers(after) : { reconfigured: [], notRunning: [] };
    const routes = await Promise.all(lb.expectedRoutes(after).map((e) => awaitRoute(e, started, deadlineMs)));
    const neighbours = await Promise.all(lb.expectedNeighbours(after).map((e) => awaitNeighbour(e, started, deadlineMs)));
    return { announcements, changes, reconfigured, notRunning, restarted, routes, neighbours };
  };
  // A layer-2 IP changing leader: the routers' node networks are captured while it moves (lab/capture/takeover.ts).
  const moves = before ? leaderMoves(lb.announcements(before), announcements) : [];
  if (moves.length === 0 || lb.expectedNeighbours(after).length === 0) return follow();
  const neighboursBefore = await neighbourTable(lb.expectedNeighbours(after));
  const when = new Date().toISOString();
  return recordTakeover(after.lab, takeoverPoints(after), async () => {
    const sync = await follow();
    const byRouter = (f: (n: NeighbourFollow) => string | number | undefined) => {
      const out: Record<string, Record<string, string | number | undefined>> = {};
      for (const n of sync.neighbours) (out[n.router] ??= {})[n.ip] = f(n);
      return out;
    };
    const ms = Object.fromEntries(sync.neighbours.filter((n) => moves.some((m) => m.ip === n.ip)).map((n) => [n.router, n.ms]));
    return { result: sync, record: { when, moves, before: neighboursBefore, after: byRouter((n) => n.have) as Record<string, Record<string, string | undefined>>, ms } };
  });
}

/** The IPs whose (first) announcing node changed: a layer-2 leader moved. */
function leaderMoves(before: Announcement[], after: Announcement[]): TakeoverRecord['moves'] {
  return after.flatMap((a) => {
    const was = before.find((b) => b.ip === a.ip)?.nodes[0];
    return was === a.nodes[0] ? [] : [{ ip: a.ip, from: was, to: a.nodes[0] }];
  });
}

/** Each router's interface on a node network: where the node network's ARP is seen. */
function takeoverPoints(t: Topology): ObservationPoint[] {
  const nodeNetworks = new Set(t.nodes.map((n) => n.network));
  return t.routers.flatMap((r) =>
    r.interfaces.filter((i) => nodeNetworks.has(i.network)).map((i) => {
      const ifname = networkBridgeName(i.network);
      return { id: `${r.name}:${ifname}`, host: r.name, ifname, ns: namespaceName(t.lab, r.name) };
    }),
  );
}

/** Per router and IP, the MAC its neighbour entry holds now. */
async function neighbourTable(expect: NeighbourExpectation[]): Promise<Record<string, Record<string, string | undefined>>> {
  const out: Record<string, Record<string, string | undefined>> = {};
  await Promise.all(expect.map(async (e) => void ((out[e.router] ??= {})[e.ip] = await neighbourOf(e.ns, e.ip))));
  return out;
}

/** At `up`: the speakers started with their announcements; wait for the routers to hold them all (an unsettled route fails `up`). */
export async function settledAnnouncements(t: Topology): Promise<AnnouncementSync> {
  // The sessions are up already (the daemons' readiness); the last next hops may still be on their way.
  const sync = await syncAnnouncements(undefined, t, UP_DEADLINE_MS);
  const unsettled = sync.routes.filter((r) => !r.settled);
  if (sync.neighbours.some((n) => !n.settled)) throw new LabError(`the router's neighbour entry did not follow MetalLB's layer-2 leaders within ${UP_DEADLINE_MS / 1000} s`, ExitCode.commandFailed, { command: 'ip neigh show' });
  if (unsettled.length > 0) {
    const lines = unsettled.map((r) => `${r.router}: ${r.to} via ${r.have.join(', ') || 'nothing'}, expected via ${r.via.join(', ') || 'no route'}`);
    throw new LabError(`the router did not follow MetalLB's announcements within ${UP_DEADLINE_MS / 1000} s:\n${lines.join('\n')}`, ExitCode.commandFailed, { command: 'ip route show' });
  }
  return sync;
}

/** The lab's speakers (and the routers' BIRDs) the load balancer mode runs whose recorded process is gone ([] in static mode). */
export function deadSpeakers(t: Topology, state: Pick<LabState, 'daemons'>): DaemonSpec[] {
  if (loadBalancerOf(t).announcements(t).length === 0) return [];
  const records = state.daemons ?? [];
  return loadBalancerOf(t).extend(t, podNetworkOf(t).plan(t)).daemons.filter((d) => !records.some((r) => r.host === d.host && r.name === d.name && isThatBird(r)));
}

/** The lab's speakers (and the routers' BIRDs) whose recorded process is gone, started again and awaited until ready. */
async function restartDeadSpeakers(t: Topology, store: LabStore): Promise<AnnouncementSync['restarted']> {
  const dead = deadSpeakers(t, store.state);
  if (dead.length === 0) return [];
  throwIfInterrupted();
  const started = performance.now();
  const fresh = await restartDaemons(dead, store);
  const ms = Math.round(performance.now() - started);
  return fresh.map((r) => ({ host: r.host, name: r.name, pid: r.pid, ms }));
}

/** Rewrite each speaker's file that changed and have that speaker read it again (BIRD: birdc configure; the ARP speaker: SIGHUP). */
async function reconfigureSpeakers(t: Topology): Promise<{ reconfigured: string[]; notRunning: string[] }> {
  const dir = labDir(t.lab);
  const daemons = loadBalancerOf(t).extend(t, podNetworkOf(t).plan(t)).daemons;
  const changed = daemons.filter((d) => d.files.some((f) => readOr(join(dir, f.path)) !== f.content));
  const records = readState(t.lab)?.daemons ?? [];
  const runningOne = (host: string, name: string) => records.find((r) => r.host === host && r.name === name && isThatBird(r));
  // A speaker that died is reported, not fatal: the rules are synced already, and status shows it down.
  const notRunning = changed.filter((d) => !runningOne(d.host, d.name)).map((d) => d.host);
  await Promise.all(
    changed.map(async (d) => {
      throwIfInterrupted();
      for (const f of d.files) writeFileSync(join(dir, f.path), f.content);
      const record = runningOne(d.host, d.name);
      if (!record) return;
      if (d.name !== 'bird') return void process.kill(record.pid, 'SIGHUP');
      const r = await run('birdc', ['-s', d.socket, 'configure'], { allowFailure: true, timeoutMs: 5000 });
      if (r.exitCode !== 0 || !/Reconfigur/.test(r.stdout)) {
        throw new LabError(`${d.name} in ${d.ns} refused its new configuration (birdc configure):\n${(r.stdout + r.stderr).trim()}`, ExitCode.commandFailed, { command: `birdc -s ${d.socket} configure` });
      }
    }),
  );
  return { reconfigured: changed.map((d) => d.host).filter((h) => !notRunning.includes(h)), notRunning };
}

/** The MAC of a namespace's eth0. */
async function macOf(ns: string): Promise<string | undefined> {
  const { stdout } = await run('ip', ['-n', ns, '-j', 'link', 'show', 'eth0'], { allowFailure: true });
  return (JSON.parse(stdout || '[]') as { address?: string }[])[0]?.address;
}

/** The router's neighbour entry for an IP: its MAC, undefined without one (or one that failed). */
async function neighbourOf(ns: string, ip: string): Promise<string | undefined> {
  const { stdout } = await run('ip', ['-n', ns, '-j', 'neigh', 'show', ip], { allowFailure: true });
  return (JSON.parse(stdout || '[]') as { lladdr?: string }[])[0]?.lladdr;
}

/** Poll the router's neighbour entry until it holds the leader's MAC (or there is none: the router never asked), or the deadline passes. */
async function awaitNeighbour(e: NeighbourExpectation, started: number, deadlineMs: number): Promise<NeighbourFollow> {
  const mac = e.nodeNs ? await macOf(e.nodeNs) : undefined;
  for (;;) {
    throwIfInterrupted();
    const have = await neighbourOf(e.ns, e.ip);
    const ms = Math.round(performance.now() - started);
    if (have === undefined || e.node === undefined || have === mac) return { ...e, mac, have, settled: true, ms };
    if (ms > deadlineMs) return { ...e, mac, have, settled: false, ms };
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

const sameHops = (a: string[], b: string[]) => [...a].sort().join() === [...b].sort().join();

/** Poll the router's route (one `ip -j route` each time) until its next hops are the expected ones, or the deadline passes. */
async function awaitRoute(e: RouteExpectation, started: number, deadlineMs: number): Promise<AnnouncedRoute> {
  for (;;) {
    throwIfInterrupted();
    const have = await readNextHops(e.ns, e.to);
    const ms = Math.round(performance.now() - started);
    if (sameHops(have, e.via)) return { ...e, have, settled: true, ms };
    if (ms > deadlineMs) return { ...e, have, settled: false, ms };
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
