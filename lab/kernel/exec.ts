import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { execa, type ResultPromise } from 'execa';
import { CommandError } from '../errors.js';
import { log } from '../log.js';
import { throwIfInterrupted, trackChild } from '../util/interrupt.js';

export interface RunOptions {
  input?: string;
  /** Do not throw on a non-zero exit; the caller inspects the result. */
  allowFailure?: boolean;
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** The one way the lab runs a command: an argument array, never a shell string. */
export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  throwIfInterrupted();
  const started = performance.now();
  const subprocess = execa(file, args, {
    input: opts.input,
    reject: false,
    timeout: opts.timeoutMs ?? 30_000,
    stripFinalNewline: true,
    env: { LC_ALL: 'C' },
  });
  trackChild(subprocess);
  const result = await subprocess;
  const exitCode = result.exitCode ?? -1;
  log.debug({ cmd: [file, ...args].join(' '), exitCode, ms: Math.round(performance.now() - started) }, 'command');
  if (exitCode !== 0 && !opts.allowFailure) {
    throw new CommandError([file, ...args].join(' '), result.exitCode, String(result.stderr || result.stdout || result.shortMessage || ''));
  }
  return { stdout: String(result.stdout), stderr: String(result.stderr), exitCode };
}

/** Run a command inside a lab namespace. */
export function runIn(ns: string, file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('ip', ['netns', 'exec', ns, file, ...args], opts);
}

/**
 * Start a long-running command (tcpdump, xtables-monitor, nft monitor) inside a lab namespace
 * and hand back the child; the caller waits for its readiness line and stops it by pid.
 */
export function spawnIn(ns: string, file: string, args: readonly string[], stdio: StdioOptions = ['ignore', 'pipe', 'pipe']): ChildProcess {
  throwIfInterrupted();
  // Followed by pid: a stop signal stops it too (lab/util/interrupt.ts).
  const child = trackChild(spawn('ip', ['netns', 'exec', ns, file, ...args], { stdio, env: { ...process.env, LC_ALL: 'C' } }));
  log.debug({ cmd: ['ip', 'netns', 'exec', ns, file, ...args].join(' '), pid: child.pid }, 'started');
  return child;
}

/** Run a command attached to this terminal (the user's own, as in `lab exec`); resolves to its exit code. */
export async function runAttached(file: string, args: readonly string[]): Promise<number> {
  const result = await trackChild(execa(file, args, { stdio: 'inherit', reject: false }));
  return result.exitCode ?? 1;
}

/** Start a command whose output goes to this terminal, without waiting for it (workshop `run`). */
export function startAttached(file: string, args: readonly string[], opts: { timeoutMs: number; pipeStderr?: boolean }): ResultPromise {
  return trackChild(execa(file, args, { stdin: 'ignore', stdout: 'inherit', stderr: opts.pipeStderr ? 'pipe' : 'inherit', reject: false, timeout: opts.timeoutMs }));
}

/** Stop a child by its pid with a signal it can act on, SIGKILL after a grace period; resolves once it has exited. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}
