import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';
import { log } from '../log.js';
import { trackChild, untrackChild } from '../util/interrupt.js';
import { PROJECT_ROOT } from '../util/project.js';
import { WORKLOAD_MARKER } from '../workload/marker.js';
import { CONTROL_SOCKET, type ControlRequest, type ControlResponse, type HostPlacement } from '../workload/protocol.js';
import { processStartTime } from './processes.js';

/** The compiled workload process (lab/workload/host.ts). */
const HOST_SCRIPT = join(PROJECT_ROOT, 'dist', 'lab', 'workload', 'host.js');

export const controlSocket = (stateDir: string) => join(stateDir, CONTROL_SOCKET);

let prestarted: ChildProcess | undefined;
let placedOne = false;

/**
 * Start the workload process now, before the lab's namespaces exist: Node takes longer to start
 * than `up`'s kernel work, so `lab up` starts it first thing and the process is ready when the
 * namespaces are. It waits, in no lab namespace and touching nothing, for startWorkloadHost to
 * tell it where to live; if this command ends first, its stdin closes and it exits.
 */
export function prestartWorkloadHost(): void {
  if (placedOne) return;
  prestarted ??= spawnHost();
  // Not a reason for this command to keep running: a failed `up` exits, and so does the process.
  holdOpen(prestarted, false);
}

/** Whether the child and its pipes keep this command's event loop running. */
function holdOpen(child: ChildProcess, hold: boolean): void {
  for (const h of [child, child.stdin, child.stdout, child.stderr] as unknown as ({ ref(): void; unref(): void } | null)[]) {
    if (hold) h?.ref();
    else h?.unref();
  }
}

/**
 * The prestarted process, if it was never placed (`up` refused its input, or the lab has no
 * pods): killed, and reaped before this command exits, so a refused command leaves no process.
 */
export async function discardUnplacedHost(): Promise<void> {
  const child = prestarted;
  prestarted = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.ref(); // this command waits for it
  child.kill('SIGKILL');
  await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
}

/**
 * Node flags for the workload process, which is most of a lab's memory: a 1 MB young generation
 * (V8 grows it to 16 MB under traffic, and the pods' answers are tiny) and no JIT (its code is
 * I/O, and compiled code is memory each lab pays again). Measured per lab by
 * `bench.js class` (scripts/bench-class.ts); LAB_WORKLOAD_NODE_FLAGS replaces them ("" for none).
 */
export const WORKLOAD_NODE_FLAGS = ['--max-semi-space-size=1'];
const workloadNodeFlags = () => {
  const set = process.env.LAB_WORKLOAD_NODE_FLAGS;
  return set === undefined ? WORKLOAD_NODE_FLAGS : set.split(/\s+/).filter((f) => /^--[a-z0-9-]+(=[\w.-]+)?$/.test(f));
};

function spawnHost(): ChildProcess {
  const child = spawn(process.execPath, [...workloadNodeFlags(), HOST_SCRIPT, WORKLOAD_MARKER], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  child.on('error', () => undefined); // reported by startWorkloadHost
  child.stdin!.on('error', () => undefined); // it exited: reported by startWorkloadHost
  return trackChild(child);
}

/**
 * The lab's workload process, placed in namespace `ns` (so a sweep of the lab's namespaces
 * finds it, with its marker argument); resolves with its pid and start time once its control
 * socket listens. Its log is `workloads.log` in the state folder; pods' logs go to `pods/`.
 * The process is the one prestartWorkloadHost started, or a new one.
 */
export function startWorkloadHost(ns: string, stateDir: string): Promise<{ pid: number; startTime: string }> {
  const logDir = join(stateDir, 'pods');
  mkdirSync(logDir, { recursive: true });
  const logPath = join(stateDir, 'workloads.log');
  // A prestarted process that already died (it could not start) is replaced.
  const child = prestarted && prestarted.exitCode === null && prestarted.signalCode === null ? prestarted : spawnHost();
  prestarted = undefined;
  placedOne = true;
  holdOpen(child, true);
  const placement: HostPlacement = { ns, log: logPath, control: controlSocket(stateDir), logDir };
  child.stdin!.write(`${JSON.stringify(placement)}\n`);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail('no ready line within 10 s'), 10_000);
    const fail = (why: string) => {
      clearTimeout(timer);
      try {
        if (child.pid) process.kill(child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      const said = err.trim() ? `: ${err.trim().split('\n').slice(-3).join(' / ')}` : '';
      reject(new LabError(`the workload process did not start: ${why}${said} (see ${logPath})`, ExitCode.commandFailed, { command: [process.execPath, HOST_SCRIPT, WORKLOAD_MARKER].join(' ') }));
    };
    const onEarlyExit = (code: number | null, signal: NodeJS.Signals | null) => fail(`exited with ${code ?? signal}`);
    child.on('exit', onEarlyExit);
    child.on('error', (e) => fail(e.message));
    // Until it takes its log as stderr, what it says (a failed start) comes here.
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (!out.includes('\n')) return;
      clearTimeout(timer);
      child.off('exit', onEarlyExit);
      for (const s of [child.stdout, child.stderr, child.stdin]) s!.destroy();
      untrackChild(child);
      child.unref();
      const pid = child.pid!;
      log.debug({ pid, ns }, 'workload process ready');
      resolve({ pid, startTime: processStartTime(pid) ?? '' });
    });
  });
}

/** One request to the workload process; resolves with the pods it serves afterwards. */
export function controlWorkloads(stateDir: string, req: ControlRequest, timeoutMs = 30_000): Promise<string[]> {
  const path = controlSocket(stateDir);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const conn = connect(path);
    let buffered = '';
    const fail = (why: string) => {
      conn.destroy();
      reject(new LabError(`workload process: ${req.op} failed: ${why}`, ExitCode.commandFailed, { command: `${req.op} via ${path}` }));
    };
    conn.setTimeout(timeoutMs, () => fail(`no answer within ${timeoutMs / 1000} s`));
    conn.on('error', (err) => fail(err.message));
    conn.on('connect', () => conn.write(`${JSON.stringify(req)}\n`));
    conn.on('data', (chunk) => {
      buffered += chunk.toString();
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      conn.end();
      let res: ControlResponse;
      try {
        res = JSON.parse(buffered.slice(0, nl)) as ControlResponse;
      } catch {
        return fail('unreadable answer');
      }
      log.debug({ op: req.op, ms: Math.round(performance.now() - started) }, 'workload control');
      if (res.ok) resolve(res.pods);
      else fail(res.error);
    });
  });
}
