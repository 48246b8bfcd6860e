import type { ChildProcess } from 'node:child_process';
import { closeSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';
import { spawnIn, stopChild } from '../kernel/exec.js';
import { log } from '../log.js';
import { openRunFile } from '../util/run-file.js';
import { parsePcap, type TcpPacket } from './pcap.js';

/** A point where the lab watches the wire: one interface inside one namespace. */
export interface ObservationPoint {
  /** host:ifname, e.g. node1:eth0 */
  id: string;
  host: string;
  ns: string;
  ifname: string;
}

export interface Capture {
  point: ObservationPoint;
  file: string;
  child: ChildProcess;
  stderr: string;
  /** Settles once tcpdump's stderr has closed: its last words (the packet counts) have been read. */
  stderrClosed: Promise<void>;
}

const READY_TIMEOUT_MS = 5000;

/**
 * Start tcpdump on one interface inside a namespace, and resolve only once it reports
 * "listening on": from then on, no packet on that interface is missed.
 */
/** The pcap file a capture at this point writes in `dir`. */
export const captureFile = (point: Pick<ObservationPoint, 'host' | 'ifname'>, dir: string) => join(dir, `${point.host}-${point.ifname}.pcap`);

export function startCapture(point: ObservationPoint, dir: string, filter: string[] = ['tcp']): Promise<Capture> {
  const file = captureFile(point, dir);
  // --immediate-mode: hand over each packet at once (otherwise a block still filling is lost on SIGINT);
  // -U: write each packet as it comes; -Z root: keep root, so tcpdump may open the file we hand it.
  const args = ['-i', point.ifname, '-n', '-U', '--immediate-mode', '-s', '512', '-Z', 'root', '-w', PCAP_FD_PATH, ...filter];
  const child = spawnWithPcap(point.ns, file, args, ['ignore', 'ignore', 'pipe']);
  const stderrClosed = new Promise<void>((resolve) => child.stderr!.once('close', resolve));
  const capture: Capture = { point, file, child, stderr: '', stderrClosed };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail('did not report "listening" within 5 s'), READY_TIMEOUT_MS);
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new LabError(`tcpdump on ${point.id} ${why}: ${capture.stderr.trim()}`, ExitCode.commandFailed, { command: ['ip', 'netns', 'exec', point.ns, 'tcpdump', ...args].join(' ') }));
    };
    const onEarlyExit = (code: number | null) => fail(`exited with ${code}`);
    child.on('exit', onEarlyExit);
    let ready = false;
    child.stderr!.on('data', (d: Buffer) => {
      capture.stderr += d.toString();
      if (!ready && capture.stderr.includes('listening on')) {
        ready = true;
        clearTimeout(timer);
        child.off('exit', onEarlyExit);
        log.debug({ point: point.id, pid: child.pid }, 'capture listening');
        resolve(capture);
      }
    });
  });
}

/**
 * tcpdump opens what -w names itself, following links: so the lab opens the pcap (lab/util/run-file.ts:
 * never through a link) and hands it over as fd 3, which tcpdump reopens as /dev/fd/3 (the same file).
 */
export const PCAP_FD_PATH = '/dev/fd/3';
export function spawnWithPcap(ns: string, file: string, args: string[], stdio: ['ignore', 'ignore' | 'pipe', 'pipe']): ChildProcess {
  const fd = openRunFile(file);
  try {
    return spawnIn(ns, 'tcpdump', args, [...stdio, fd]);
  } finally {
    closeSync(fd);
  }
}

/** How long a capture's file must stay unchanged before tcpdump counts as caught up, and the longest wait for it. */
const SETTLED_MS = 60;
const DRAIN_LIMIT_MS = 1000;

/**
 * Wait until tcpdump has written what the kernel handed it: it writes each packet as it reads
 * it (-U, --immediate-mode), so a file that stays the same size for a moment is caught up. A
 * SIGINT while packets still wait in its ring buffer loses them (a SYN-ACK missing from a
 * capture under load); what is lost anyway shows in the counts tcpdump prints at exit.
 */
async function drain(c: Capture): Promise<void> {
  const size = () => {
    try {
      return statSync(c.file).size;
    } catch {
      return -1;
    }
  };
  const deadline = performance.now() + DRAIN_LIMIT_MS;
  let last = size();
  let stableSince = performance.now();
  while (performance.now() < deadline && performance.now() - stableSince < SETTLED_MS) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const now = size();
    if (now !== last) [last, stableSince] = [now, performance.now()];
  }
}

/** Stop a capture (SIGINT lets tcpdump flush and close the file), wait for it to exit and for its last words. */
export async function stopCapture(c: Capture): Promise<void> {
  await stopChild(c.child, 'SIGINT', 3000);
  await Promise.race([c.stderrClosed, new Promise((resolve) => setTimeout(resolve, 500).unref())]);
}

/**
 * What went wrong with a capture that the packets alone would hide, as one sentence naming the
 * point, or undefined. `ended` is how tcpdump exited if it did so before it was asked to.
 */
export function captureProblem(point: ObservationPoint, stderr: string, ended?: { code: number | null; signal: NodeJS.Signals | null }): string | undefined {
  const where = `tcpdump at ${point.id} (namespace ${point.ns})`;
  const said = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !/^(listening on|tcpdump: listening|\d+ packets? )/.test(l)).slice(-2).join(' / ');
  if (ended) return `${where} ended before the traffic did (${ended.signal ? `killed by ${ended.signal}` : `exit code ${ended.code}`})${said ? `: ${said}` : ''}`;
  const count = (what: string) => Number(new RegExp(`(\\d+) packets? ${what}`).exec(stderr)?.[1] ?? NaN);
  const [captured, received, dropped] = [count('captured'), count('received by filter'), count('dropped by kernel')];
  if (dropped > 0) return `${where}: the kernel dropped ${dropped} packets before tcpdump read them`;
  if (received > captured) return `${where} wrote ${captured} of the ${received} packets the kernel handed it`;
  return undefined;
}

export function readCapture(c: Capture): TcpPacket[] {
  return parsePcap(readFileSync(c.file));
}

/** What withCaptures learned: the work's result, each point's packets and pcap file, and each point's trouble. */
export interface CaptureRun<T> {
  result: T;
  packets: Map<string, TcpPacket[]>;
  files: Map<string, string>;
  /** Per point id: a capture that ended early or lost packets (captureProblem). */
  problems: Map<string, string>;
  /** The points whose tcpdump ended before the work did: what they did not see proves nothing. */
  ended: Set<string>;
}

/**
 * Run work with captures open on every point, and always stop them afterwards,
 * whether the work succeeded or not. Also stops them if the process is interrupted.
 */
export async function withCaptures<T>(points: ObservationPoint[], dir: string, work: () => Promise<T>, filter?: string[]): Promise<CaptureRun<T>> {
  const started: Capture[] = [];
  const killAll = () => started.forEach((c) => c.child.kill('SIGKILL'));
  process.once('exit', killAll);
  try {
    const results = await Promise.allSettled(points.map((p) => startCapture(p, dir, filter)));
    for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const result = await work();
    // Exited before being asked to: killed, or the interface went away under it.
    const early = new Map(started.filter((c) => c.child.exitCode !== null || c.child.signalCode !== null).map((c) => [c.point.id, { code: c.child.exitCode, signal: c.child.signalCode }]));
    await Promise.all(started.map(async (c) => (early.has(c.point.id) ? undefined : drain(c))));
    await Promise.all(started.map(stopCapture));
    const problems = new Map<string, string>();
    for (const c of started) {
      const problem = captureProblem(c.point, c.stderr, early.get(c.point.id));
      if (problem) problems.set(c.point.id, problem);
    }
    const packets = new Map(started.map((c) => [c.point.id, readCapture(c)]));
    const files = new Map(started.map((c) => [c.point.id, c.file]));
    return { result, packets, files, problems, ended: new Set(early.keys()) };
  } finally {
    await Promise.all(started.map(stopCapture));
    process.removeListener('exit', killAll);
  }
}
