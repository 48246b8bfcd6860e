import { execa } from 'execa';
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
