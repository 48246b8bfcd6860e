import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';
import { log } from '../log.js';
import { PROJECT_ROOT } from '../util/project.js';
import { WORKLOAD_MARKER } from '../workload/marker.js';
import { CONTROL_SOCKET, type ControlRequest, type ControlResponse } from '../workload/protocol.js';
import { NETNS_RUN_DIR } from './netns.js';
import { processStartTime } from './processes.js';

/** The compiled workload process (lab/workload/host.ts). */
const HOST_SCRIPT = join(PROJECT_ROOT, 'dist', 'lab', 'workload', 'host.js');

export const controlSocket = (stateDir: string) => join(stateDir, CONTROL_SOCKET);

/**
 * Start the lab's workload process inside namespace `ns` (so a sweep of the lab's namespaces
 * finds it), with the marker argument; resolve with its pid and start time once its control
 * socket listens. Its log is `workloads.log` in the state folder; pods' logs go to `pods/`.
 */
export function startWorkloadHost(ns: string, stateDir: string): Promise<{ pid: number; startTime: string }> {
  const logDir = join(stateDir, 'pods');
  mkdirSync(logDir, { recursive: true });
  const logPath = join(stateDir, 'workloads.log');
  // nsenter joins the network namespace only and execs node, so the pid we get is the workload
  // process's own; `ip netns exec` would also copy the mount namespace, whose size grows with
  // every /run/netns mount, for nothing this process uses (it resolves no names).
  const args = [`--net=${NETNS_RUN_DIR}/${ns}`, process.execPath, HOST_SCRIPT, WORKLOAD_MARKER, '--ns', ns, '--control', controlSocket(stateDir), '--log-dir', logDir];
  const logFd = openSync(logPath, 'a');
  const child = spawn('nsenter', args, { detached: true, stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail('no ready line within 10 s'), 10_000);
    const fail = (why: string) => {
      clearTimeout(timer);
      try {
        if (child.pid) process.kill(child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      reject(new LabError(`the workload process did not start: ${why} (see ${logPath})`, ExitCode.commandFailed, { command: ['nsenter', ...args].join(' ') }));
    };
    const onEarlyExit = (code: number | null) => fail(`exited with ${code}`);
    child.on('exit', onEarlyExit);
    child.on('error', (err) => fail(err.message));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (!out.includes('\n')) return;
      clearTimeout(timer);
      child.off('exit', onEarlyExit);
      child.stdout!.destroy();
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
