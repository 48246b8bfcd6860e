import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExitCode, LabError } from '../errors.js';
import { birdLogTail, birdProtocols, isThatBird, peerOfProtocol, startBird, type BirdProtocol } from '../kernel/bird.js';
import { run } from '../kernel/exec.js';
import { isAlive } from '../kernel/processes.js';
import type { DaemonSpec } from '../plan/pod-network/index.js';
import type { Plan } from '../plan/plan.js';
import { labDir, type DaemonRecord, type LabState, type LabStore } from '../state/store.js';
import { throwIfInterrupted } from '../util/interrupt.js';

/**
 * How long the daemons get to reach readiness: BGP's own timers are a few seconds (lab/plan/bird.ts).
 * LAB_DAEMONS_READY_MS shortens it for the tests of a session that never comes up.
 */
export const DAEMONS_READY_MS = Number(process.env.LAB_DAEMONS_READY_MS) || 15_000;
const POLL_MS = 25;

/**
 * The pod network's processes (plan.podNetwork.daemons: BIRD in bgp mode), started by provision
 * once the links carry packets. Each is recorded in the state as it is spawned, before anything
 * is awaited, so down, rollback and the crash sweep stop it by pid (and the sweep of the lab's
 * namespaces finds one a SIGKILL caught between spawn and record). Ready when every session is
 * Established and every expected route is in the kernel; else exit 4 with the BIRDs' log lines.
 */
export async function startPodNetworkDaemons(plan: Plan, store: LabStore): Promise<void> {
  await startDaemons(plan.podNetwork.daemons, store);
}

/**
 * Start these daemons with their files written, listeners first, and wait until each is ready.
 * A daemon started again (a speaker that died: restartDaemons) is ready by what its log says
 * after this start, not by the lines its earlier run left there.
 */
async function startDaemons(daemons: DaemonSpec[], store: LabStore, logFrom = new Map<string, number>()): Promise<DaemonRecord[]> {
  const dir = labDir(store.lab);
  for (const d of daemons) for (const f of d.files) writeFile(join(dir, f.path), f.content);
  const deadline = Date.now() + DAEMONS_READY_MS;
  // The listeners first, so the others' first connection attempt finds them.
  const listeners = daemons.filter((d) => d.wave === 0);
  const records = listeners.map((d) => start(d, store));
  await waitFor(listeners, records, deadline, answering, logFrom);
  records.push(...daemons.filter((d) => d.wave === 1).map((d) => start(d, store)));
  await waitFor(daemons, records, deadline, ready, logFrom);
  return records;
}

/**
 * Start again daemons whose process is gone (lab revive, and every sync of announcements):
 * each recorded anew by pid as it is spawned, then awaited until ready as at `up`.
 */
export async function restartDaemons(daemons: DaemonSpec[], store: LabStore): Promise<DaemonRecord[]> {
  const logFrom = new Map(daemons.map((d) => [daemonKey(d), sizeOf(d.log)]));
  return startDaemons(daemons, store, logFrom);
}

/** A daemon is one per host and name (a node may run a BIRD and an ARP speaker). */
const daemonKey = (d: { host: string; name: string }) => `${d.host} ${d.name}`;

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function writeFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
}

function start(d: DaemonSpec, store: LabStore): DaemonRecord {
  throwIfInterrupted();
  const started = startBird({ ns: d.ns, argv: d.argv, socket: d.socket, log: d.log });
  const record = { host: d.host, ns: d.ns, name: d.name, socket: d.socket, log: d.log, ...started };
  store.recordDaemon(record);
  return record;
}

/** What one daemon lacks to be ready: [] when it is. */
type Lacks = (d: DaemonSpec, protocols: BirdProtocol[]) => Promise<string[]>;

const answering: Lacks = async () => [];

const ready: Lacks = async (d, protocols) => {
  const lacks = d.ready.established.flatMap((name) => {
    const p = protocols.find((x) => x.name === name);
    return p?.info.startsWith('Established') ? [] : [`session ${name} is ${p ? `${p.state} ${p.info}`.trim() : 'missing'}`];
  });
  if (d.ready.routes.length === 0) return lacks;
  // Both families when a dual-stack cluster's IPv6 pod CIDRs are among them (`ip route` shows one family at a time).
  const families = d.ready.routes.some((r) => r.includes(':')) ? ['-4', '-6'] : ['-4'];
  const installed = (await Promise.all(families.map((f) => run('ip', ['-n', d.ns, f, 'route', 'show', 'proto', 'bird'])))).map((r) => r.stdout).join('\n');
  const have = new Set(installed.split('\n').map((l) => l.split(' ')[0]));
  // `ip route` prints a /32 as the bare address (a LoadBalancer IP announced by MetalLB's BGP mode).
  return [...lacks, ...d.ready.routes.filter((r) => !have.has(r.replace(/\/32$/, ''))).map((r) => `route ${r} not installed (proto bird)`)];
};

async function birdLacks(d: DaemonSpec, lacksOf: Lacks): Promise<string[]> {
  const protocols = await birdProtocols(d.socket);
  return protocols ? lacksOf(d, protocols) : ['control socket not answering yet'];
}

/** A daemon that says when it is ready: the line in its log (its stdout). */
function logLacks(d: DaemonSpec, line: string, from: number | undefined): string[] {
  const text = from === undefined ? birdLogTail(d.log, 50) : readSince(d.log, from);
  return text.split('\n').includes(line) ? [] : [`has not said "${line}" yet`];
}

function readSince(path: string, from: number): string {
  try {
    return readFileSync(path).subarray(from).toString('utf8');
  } catch {
    return '';
  }
}

/** Poll every daemon's control socket until none lacks anything; a daemon that exits, or the deadline, fails `up`. */
async function waitFor(daemons: DaemonSpec[], records: DaemonRecord[], deadline: number, lacksOf: Lacks, logFrom: Map<string, number>): Promise<void> {
  for (;;) {
    throwIfInterrupted();
    const missing: { d: DaemonSpec; lacks: string[] }[] = [];
    for (const d of daemons) {
      const r = records.find((x) => daemonKey(x) === daemonKey(d))!;
      if (!isAlive(r.pid)) throw failure([{ d, lacks: [`exited (pid ${r.pid})`] }], 'exited');
      const lacks = d.ready.logLine !== undefined ? logLacks(d, d.ready.logLine, logFrom.get(daemonKey(d))) : await birdLacks(d, lacksOf);
      if (lacks.length > 0) missing.push({ d, lacks });
    }
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw failure(missing, `not ready within ${DAEMONS_READY_MS / 1000} s`);
    await sleep(POLL_MS);
  }
}

function failure(missing: { d: DaemonSpec; lacks: string[] }[], why: string): LabError {
  const parts = missing.map(({ d, lacks }) => `${d.name} in ${d.ns}: ${lacks.join('; ')}\n  its log (${d.log}):\n${indent(birdLogTail(d.log))}`);
  return new LabError(`pod network daemons ${why}:\n${parts.join('\n')}`, ExitCode.commandFailed, { command: missing[0]!.d.argv.join(' ') });
}

const indent = (text: string) => text.split('\n').map((l) => `    ${l}`).join('\n');

/** Each BGP session of the lab's daemons, as their BIRDs report it now (lab status). */
export interface SessionStatus {
  host: string;
  peer: string;
  state: string;
  info: string;
}

export interface DaemonStatus {
  host: string;
  name: string;
  pid: number;
  running: boolean;
  sessions: SessionStatus[];
}

export async function daemonSessions(state: LabState): Promise<DaemonStatus[]> {
  return Promise.all(
    (state.daemons ?? []).map(async (d) => {
      const running = isThatBird(d);
      const protocols = running ? ((await birdProtocols(d.socket)) ?? []) : [];
      const sessions = protocols.filter((p) => p.proto === 'BGP').map((p) => ({ host: d.host, peer: peerOfProtocol(p.name), state: p.state, info: p.info }));
      return { host: d.host, name: d.name, pid: d.pid, running, sessions };
    }),
  );
}
