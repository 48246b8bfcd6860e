import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { OrderedStream, parseTcpdumpLine, type StreamLine } from '../capture/stream.js';
import { ExitCode, LabError } from '../errors.js';
import { spawnIn, stopChild } from '../kernel/exec.js';
import { makeOutputDir } from '../util/output-dir.js';
import { preflight } from '../kernel/preflight.js';
import { hostNamespace, runningLab } from './running.js';

export interface CaptureOptions {
  /** A tcpdump filter expression, e.g. "tcp port 32000". */
  filter?: string;
  /** Stop after this many packets in all. */
  count?: number;
  /** Stop after this many seconds. */
  duration?: number;
  /** Keep a pcap per point here. */
  write?: string;
  onLine: (line: StreamLine) => void;
  /** Called once every tcpdump reports it is listening. */
  onReady?: (points: string[]) => void;
  /** Resolves when the caller wants to stop (e.g. Ctrl-C). */
  stop?: Promise<void>;
}

export interface CaptureSummary {
  points: string[];
  packets: number;
  files: string[];
}

interface Point {
  host: string;
  ifname?: string;
  ns: string;
  label: string;
}

/** Order lines from different pipes within this window (ms): a pipe may lag another by a few ms. */
const ORDER_WINDOW_MS = 150;
const READY_MS = 5000;

/**
 * Live capture at several points of a lab at once: one tcpdump per point, their decoded lines
 * merged into one stream in capture order, optionally a pcap per point. Every tcpdump is
 * stopped on every way out (count, duration, Ctrl-C, SIGTERM, an error).
 */
export async function capture(lab: string, targets: string[], opts: CaptureOptions): Promise<CaptureSummary> {
  const running = runningLab(lab);
  preflight(['ip', 'tcpdump']);
  if (targets.length === 0) throw new LabError('name at least one host or host:interface to capture on, e.g. node1:eth0', ExitCode.badInput);
  if (opts.count !== undefined && (!Number.isInteger(opts.count) || opts.count < 1)) throw new LabError(`--count ${opts.count}: expected a whole number of packets, 1 or more`, ExitCode.badInput);
  if (opts.duration !== undefined && !(opts.duration > 0)) throw new LabError(`--duration ${opts.duration}: expected seconds, more than 0`, ExitCode.badInput);
  const points: Point[] = targets.map((t) => {
    const [host, ifname] = t.split(':') as [string, string | undefined];
    if (ifname !== undefined && !/^[A-Za-z0-9_.-]{1,15}$/.test(ifname)) throw new LabError(`${t}: "${ifname}" is not an interface name`, ExitCode.badInput);
    return { host, ifname, ns: hostNamespace(running, host), label: ifname ? `${host}:${ifname}` : `${host}:any` };
  });
  const dir = opts.write ? makeOutputDir(opts.write, '--write') : undefined;

  const children: ChildProcess[] = [];
  const stream = new OrderedStream(ORDER_WINDOW_MS);
  // Interrupted (Ctrl-C, SIGTERM): no tcpdump stays, and the lines still held are shown.
  const killAll = () => {
    children.forEach((c) => c.kill('SIGKILL'));
    emit(true);
  };
  process.once('exit', killAll);
  let packets = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const emit = (flush = false) => {
    for (const line of stream.release(performance.now(), flush)) {
      if (opts.count !== undefined && packets >= opts.count) break;
      packets++;
      opts.onLine(line);
      if (opts.count !== undefined && packets >= opts.count) finish();
    }
  };
  const ticker = setInterval(() => emit(), 50);
  const files: string[] = [];
  try {
    await Promise.all(
      points.map(
        (p) =>
          new Promise<void>((ready, fail) => {
            const file = dir ? join(dir, `${p.host}-${p.ifname ?? 'any'}.pcap`) : undefined;
            if (file) files.push(file);
            // -l: line-buffered; --print: decode to stdout while also writing the pcap.
            const args = ['-i', p.ifname ?? 'any', '-n', '-l', '-tt', ...(file ? ['-U', '-w', file, '--print', '-Z', 'root'] : []), ...(opts.filter ? opts.filter.split(/\s+/) : [])];
            const child = spawnIn(p.ns, 'tcpdump', args);
            children.push(child);
            let err = '';
            let partial = '';
            const timer = setTimeout(() => fail(new LabError(`tcpdump on ${p.label} did not start listening within 5 s: ${err.trim()}`, ExitCode.commandFailed)), READY_MS);
            child.stderr!.on('data', (d: Buffer) => {
              err += d.toString();
              if (err.includes('listening on')) {
                clearTimeout(timer);
                ready();
              }
            });
            child.stdout!.on('data', (d: Buffer) => {
              const lines = (partial + d.toString()).split('\n');
              partial = lines.pop()!;
              for (const l of lines) {
                const parsed = parseTcpdumpLine(p.host, p.ifname, l);
                if (parsed) stream.push(parsed, performance.now());
              }
            });
            child.on('exit', (code) => {
              clearTimeout(timer);
              if (!err.includes('listening on')) fail(new LabError(`tcpdump on ${p.label} exited with ${code}: ${err.trim()}`, ExitCode.badInput));
            });
          }),
      ),
    );
    opts.onReady?.(points.map((p) => p.label));
    const timers: NodeJS.Timeout[] = [];
    if (opts.duration !== undefined) timers.push(setTimeout(finish, opts.duration * 1000));
    void opts.stop?.then(finish);
    await finished;
    timers.forEach(clearTimeout);
  } finally {
    clearInterval(ticker);
    await Promise.all(children.map((c) => stopChild(c, 'SIGINT', 2000)));
    emit(true);
    process.removeListener('exit', killAll);
  }
  return { points: points.map((p) => p.label), packets, files };
}
