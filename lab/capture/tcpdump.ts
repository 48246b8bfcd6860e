import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';
import { spawnIn, stopChild } from '../kernel/exec.js';
import { log } from '../log.js';
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
  // -U: write each packet as it comes; -Z root: keep root, so the file lands where we asked.
  const args = ['-i', point.ifname, '-n', '-U', '--immediate-mode', '-s', '512', '-Z', 'root', '-w', file, ...filter];
  const child = spawnIn(point.ns, 'tcpdump', args, ['ignore', 'ignore', 'pipe']);
  const capture: Capture = { point, file, child, stderr: '' };
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

/** Stop a capture (SIGINT lets tcpdump flush and close the file) and wait for it to exit. */
export function stopCapture(c: Capture): Promise<void> {
  return stopChild(c.child, 'SIGINT', 3000);
}

export function readCapture(c: Capture): TcpPacket[] {
  return parsePcap(readFileSync(c.file));
}

/**
 * Run work with captures open on every point, and always stop them afterwards,
 * whether the work succeeded or not. Also stops them if the process is interrupted.
 */
export async function withCaptures<T>(points: ObservationPoint[], dir: string, work: () => Promise<T>, filter?: string[]): Promise<{ result: T; packets: Map<string, TcpPacket[]>; files: Map<string, string> }> {
  const started: Capture[] = [];
  const killAll = () => started.forEach((c) => c.child.kill('SIGKILL'));
  process.once('exit', killAll);
  try {
    const results = await Promise.allSettled(points.map((p) => startCapture(p, dir, filter)));
    for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const result = await work();
    await Promise.all(started.map(stopCapture));
    const packets = new Map(started.map((c) => [c.point.id, readCapture(c)]));
    const files = new Map(started.map((c) => [c.point.id, c.file]));
    return { result, packets, files };
  } finally {
    await Promise.all(started.map(stopCapture));
    process.removeListener('exit', killAll);
  }
}
