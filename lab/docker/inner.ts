import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { interruptedBy, onInterrupt } from '../util/interrupt.js';
import { LAB_CLI_IN_CONTAINER } from './engine.js';
import { execCapture, execStream, type ExecOptions } from './exec.js';

/**
 * The engine's API can start a command in a container but not signal it, and a command
 * started there outlives the client that asked for it. So an inner `lab` command writes its
 * pid first (the shell then becomes the command with exec), and a stop signal to this process
 * is handed on to it through that pid: the inner `lab up` rolls its lab back, the inner
 * `lab verify` marks its run INCOMPLETE, as they do when stopped on a host.
 */

/** How long a stopped inner command may take to clean up before this process moves on. */
const INNER_STOP_WAIT_MS = 12_000;
const RETRY_MS = 100;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Send a signal to the process whose pid the file holds; false when there is none yet. */
async function signalByPidFile(container: Docker.Container, pidFile: string, signal: string): Promise<boolean> {
  try {
    const cmd = ['sh', '-c', 'pid=$(cat "$0" 2>/dev/null) && kill -s "$1" "$pid"', pidFile, signal.replace(/^SIG/, '')];
    return (await execCapture(container, cmd)).code === 0;
  } catch {
    return false; // the container is gone: so is the command
  }
}

/**
 * Hand this process's stop signal on to the inner command, and wait (bounded) until it has
 * ended. Until its pid is written the command has not started: retry until it has, or ended.
 */
async function stopInner(container: Docker.Container, pidFile: string, ended: Promise<unknown>): Promise<void> {
  const done = ended.then(
    () => true,
    () => true,
  );
  const signal = interruptedBy() ?? 'SIGTERM';
  const deadline = Date.now() + INNER_STOP_WAIT_MS;
  let sent = false;
  while (Date.now() < deadline) {
    sent ||= await signalByPidFile(container, pidFile, signal);
    const wait = sent ? deadline - Date.now() : RETRY_MS;
    if (await Promise.race([done, sleep(Math.max(0, wait)).then(() => false)])) return;
  }
}

/** `lab <args>` in the container, stopped with this process; returns its exit code. */
export async function execLabInside(container: Docker.Container, args: string[], opts: ExecOptions = {}): Promise<number> {
  const pidFile = `/tmp/kube-packet-lab-exec.${randomBytes(6).toString('hex')}.pid`;
  const wrapped = ['sh', '-c', 'echo $$ > "$0" && exec "$@"', pidFile, ...LAB_CLI_IN_CONTAINER, ...args];
  const ended = execStream(container, wrapped, opts);
  const forget = onInterrupt(`stop "lab ${args.join(' ')}" in the lab container`, () => stopInner(container, pidFile, ended));
  try {
    return await ended;
  } finally {
    forget();
    if (!interruptedBy()) await execCapture(container, ['rm', '-f', pidFile]).catch(() => undefined);
  }
}
