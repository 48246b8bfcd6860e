import { spawn } from 'node:child_process';
import { CommandError } from '../errors.js';
import { log } from '../log.js';

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
  const started = performance.now();
  const result = await new Promise<RunResult & { error?: string }>((resolve) => {
    const child = spawn(file, args, { env: { ...process.env, LC_ALL: 'C' }, stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 30_000 });
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
