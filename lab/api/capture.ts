import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { OrderedStream, parseTcpdumpLine, type StreamLine } from '../capture/stream.js';
import { ExitCode, LabError } from '../errors.js';
import { PCAP_FD_PATH, spawnWithPcap } from '../capture/tcpdump.js';
import { spawnIn, stopChild } from '../kernel/exec.js';
import { lockHolder } from '../state/lock.js';
import { labExists } from '../state/store.js';
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
  /** Called when one point's tcpdump dies while others still capture. */
  onPointEnded?: (label: string, why: string) => void;
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
/** The longest --duration: a day (and Node's timers overflow past 2^31-1 ms, ending at once). */
export const MAX_CAPTURE_SECONDS = 86_400;
/** How often a capture without an end checks that its lab still exists. */
const LAB_CHECK_MS = 500;

/** Refuse options that cannot work, before the lab is looked up or anything starts. */
function checkCaptureOptions(targets: string[], opts: CaptureOptions): void {
  const bad = (message: string) => new LabError(message, ExitCode.badInput);
  if (targets.length === 0) throw bad('name at least one host or host:interface to capture on, e.g. node1:eth0');
  if (opts.count !== undefined && (!Number.isInteger(opts.count) || opts.count < 1)) throw bad(`--count ${opts.count}: expected a whole number of packets, 1 or more`);
  if (opts.duration !== undefined && !(opts.duration > 0 && opts.duration <= MAX_CAPTURE_SECONDS)) throw bad(`--duration ${opts.duration}: expected seconds, more than 0 and at most ${MAX_CAPTURE_SECONDS} (a day)`);
  // The filter reaches tcpdump as one argument after --, so it can never be an option; a leading - says the user meant one.
  if (opts.filter !== undefined && /^\s*-/.test(opts.filter)) throw bad(`--filter ${JSON.stringify(opts.filter)}: a filter is a tcpdump expression (e.g. "tcp port 32000"), not tcpdump options`);
}

/**
 * Live capture at several points of a lab at once: one tcpdump per point, their decoded lines
 * merged into one stream in capture order, optionally a pcap per point. Every tcpdump is
 * stopped on every way out (count, duration, Ctrl-C, SIGTERM, an error). A capture also ends,
 * with an error, when its lab goes away (lab down) or every one of its tcpdumps has died.
 */
export async function capture(lab: string, targets: string[], opts: CaptureOptions): Promise<CaptureSummary> {
  checkCaptureOptions(targets, opts);
  const running = runningLab(lab);
  preflight(['ip', 'tcpdump']);
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
  let failure: LabError | undefined;
  // Set once the capture ends: the tcpdumps stopped then are not points that died.
  let stopping = false;
  const fail = (err: LabError) => {
    failure ??= err;
    finish();
  };
  const emit = (flush = false) => {
    for (const line of stream.release(performance.now(), flush)) {
      if (opts.count !== undefined && packets >= opts.count) break;
      packets++;
      opts.onLine(line);
      if (opts.count !== undefined && packets >= opts.count) finish();
    }
  };
  const ticker = setInterval(() => emit(), 50);
  const files = dir ? points.map((p) => join(dir, `${p.host}-${p.ifname ?? 'any'}.pcap`)) : [];
  const timers: NodeJS.Timeout[] = [];
  try {
    const ended = new Set<string>();
    const onEnd = (p: Point, why: string) => {
      if (stopping) return;
      ended.add(p.label);
      if (labGoing(lab)) fail(labGone(lab));
      else if (ended.size === points.length) fail(new LabError(`every capture point has ended: tcpdump on ${p.label} ${why}`, ExitCode.commandFailed));
      else opts.onPointEnded?.(p.label, why);
    };
    await Promise.all(points.map((p, i) => startPoint(p, files[i], opts.filter, stream, children, onEnd)));
    opts.onReady?.(points.map((p) => p.label));
    if (opts.duration !== undefined) timers.push(setTimeout(finish, opts.duration * 1000));
    timers.push(setInterval(() => labGoing(lab) && fail(labGone(lab)), LAB_CHECK_MS));
    void opts.stop?.then(finish);
    await finished;
  } finally {
    stopping = true;
    timers.forEach(clearTimeout);
    clearInterval(ticker);
    await Promise.all(children.map((c) => stopChild(c, 'SIGINT', 2000)));
    emit(true);
    process.removeListener('exit', killAll);
  }
  if (failure) throw failure;
  return { points: points.map((p) => p.label), packets, files };
}

/** The lab is gone, or `lab down` is removing it (it holds the lab's lock while it does). */
const labGoing = (lab: string) => !labExists(lab) || lockHolder(lab)?.verb === 'down';
const labGone = (lab: string) => new LabError(`lab ${lab} went away during the capture (lab down): the capture ended`, ExitCode.labState);

/** Start one point's tcpdump; resolves once it listens. `onEnd` hears of its death after that. */
function startPoint(p: Point, file: string | undefined, filter: string | undefined, stream: OrderedStream, children: ChildProcess[], onEnd: (p: Point, why: string) => void): Promise<void> {
  return new Promise<void>((ready, fail) => {
    // -l: line-buffered; --print: decode to stdout while also writing the pcap (opened by the lab, handed over as fd 3).
    const args = ['-i', p.ifname ?? 'any', '-n', '-l', '-tt', ...(file ? ['-U', '-w', PCAP_FD_PATH, '--print', '-Z', 'root'] : []), ...(filter ? ['--', filter] : [])];
    const child = file ? spawnWithPcap(p.ns, file, args, ['ignore', 'pipe', 'pipe']) : spawnIn(p.ns, 'tcpdump', args);
    children.push(child);
    let err = '';
    let partial = '';
    let listening = false;
    const timer = setTimeout(() => fail(new LabError(`tcpdump on ${p.label} did not start listening within 5 s: ${err.trim()}`, ExitCode.commandFailed)), READY_MS);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (!listening && err.includes('listening on')) {
        listening = true;
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
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (!listening) fail(new LabError(`tcpdump on ${p.label} exited with ${code ?? signal}: ${err.trim()}`, ExitCode.badInput));
      else onEnd(p, `exited (${signal ?? `exit ${code}`})`);
    });
  });
}
