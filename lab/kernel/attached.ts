import { execa, type ResultPromise } from 'execa';

/**
 * Start a command whose output goes to this terminal, without waiting for it (workshop `run`).
 * Its own module: only the workshop needs execa, and every other verb starts faster without it.
 */
export function startAttached(file: string, args: readonly string[], opts: { timeoutMs: number; pipeOutput?: boolean }): ResultPromise {
  const to = opts.pipeOutput ? 'pipe' : 'inherit';
  return execa(file, args, { stdin: 'ignore', stdout: to, stderr: to, reject: false, timeout: opts.timeoutMs, buffer: false });
}
