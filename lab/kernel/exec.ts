import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
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

const trimNewline = (s: string) => (s.endsWith('\n') ? s.slice(0, -1) : s);

/**
 * The one way the lab runs a command: an argument array, never a shell string. Node's own
 * spawn (no wrapper library: loading one costs more than most commands the lab runs).
 */
export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  throwIfInterrupted();
  const started = performance.now();
  const result = await new Promise<RunResult & { error?: string }>((resolve) => {
    // Followed by pid: a stop signal stops it too (lab/util/interrupt.ts).
    const child = trackChild(spawn(file, args, { env: { ...process.env, LC_ALL: 'C' }, stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 30_000 }));
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    let spawnError: string | undefined;
    child.on('error', (e) => {
      spawnError = e.message;
    });
    child.stdin.on('error', () => undefined); // a command that exits without reading its input
    child.stdin.end(opts.input ?? '');
    child.on('close', (code, signal) => {
      resolve({
        stdout: trimNewline(Buffer.concat(out).toString()),
        stderr: trimNewline(Buffer.concat(err).toString()),
        exitCode: code ?? -1,
        error: spawnError ?? (signal ? `killed by ${signal}` : undefined),
      });
    });
  });
  log.debug({ cmd: [file, ...args].join(' '), exitCode: result.exitCode, ms: Math.round(performance.now() - started) }, 'command');
  if (result.exitCode !== 0 && !opts.allowFailure) {
    throw new CommandError([file, ...args].join(' '), result.exitCode === -1 ? undefined : result.exitCode, result.stderr || result.stdout || result.error || '');
  }
  return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode };
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
  const child = trackChild(spawn('ip', ['netns', 'exec', ns, file, ...args], { stdio, env: { ...process.env, LC_ALL: 'C' } }));
  log.debug({ cmd: ['ip', 'netns', 'exec', ns, file, ...args].join(' '), pid: child.pid }, 'started');
  return child;
}

/** Run a command attached to this terminal (the user's own, as in `lab exec`); resolves to its exit code. */
export function runAttached(file: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = trackChild(spawn(file, args, { stdio: 'inherit' }));
    child.on('error', () => resolve(1));
    child.on('close', (code) => resolve(code ?? 1));
  });
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
