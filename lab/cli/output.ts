import { CommanderError } from 'commander';
import { ExitCode, fromSystemError, LabError } from '../errors.js';
import { log } from '../log.js';
import { interruptedBy } from '../util/interrupt.js';

/** Human output goes to stdout, in colour on a terminal. */
export { bold, dim, green, red, useColour, yellow } from '../util/colour.js';

export function say(text = ''): void {
  process.stdout.write(`${text}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Progress for long steps, on stderr so stdout stays clean for reports and --json. */
export function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\u001b[2K${text}`);
}
export function progressDone(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\u001b[2K');
}

/** The one error funnel: a clear message and a documented exit code, never a stack trace. */
export function exitWithError(err: unknown): void {
  progressDone();
  // A stop signal is being handled: its handler cleans up and picks the exit code.
  if (interruptedBy()) return;
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : ExitCode.badInput);
  err = fromSystemError(err) ?? err;
  if (err instanceof LabError) {
    process.stderr.write(`lab: ${err.message}\n`);
    log.debug({ err, details: err.details }, 'failed');
    process.exit(err.exitCode);
  }
  process.stderr.write(`lab: unexpected error: ${err instanceof Error ? err.message : String(err)}\n`);
  log.error({ err }, 'unexpected error');
  process.exit(ExitCode.commandFailed);
}

/** Width of a report when stdout is no terminal (a pipe to less, a file) and COLUMNS is unset. */
export const DEFAULT_COLUMNS = 80;

/**
 * How wide human output may be: COLUMNS when it holds a positive number (as shells and less set
 * it), else the terminal's width, else DEFAULT_COLUMNS. A terminal reporting 0 counts as none.
 */
export function outputColumns(env: NodeJS.ProcessEnv = process.env, out: { isTTY?: boolean; columns?: number } = process.stdout): number {
  const fromEnv = Number(env.COLUMNS);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  if (out.isTTY && out.columns) return out.columns;
  return DEFAULT_COLUMNS;
}

/** Parse repeated --set key=value options. */
export function collectSet(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const i = value.indexOf('=');
  if (i <= 0) throw new LabError(`--set ${value}: expected key=value, e.g. services.web.externalTrafficPolicy=Local`, ExitCode.badInput);
  return { ...previous, [value.slice(0, i)]: value.slice(i + 1) };
}

/** `--unset k`: the same as `--set k=`, the field removed. */
export function collectUnset(key: string, previous: Record<string, string> = {}): Record<string, string> {
  if (!key || key.includes('=')) throw new LabError(`--unset ${key}: expected a field, e.g. services.web.healthCheckNodePort`, ExitCode.badInput);
  return { ...previous, [key]: '' };
}
