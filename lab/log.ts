import { createRequire } from 'node:module';
import type { Logger } from 'pino';

/**
 * Structured logs go to stderr so stdout stays for the human report or --json.
 * LAB_LOG_LEVEL=debug shows every command the lab runs.
 *
 * pino is loaded on the first message at an enabled level, not at start-up: most commands
 * log nothing at the default level, and loading the logger would be a large part of their time.
 */
type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };
const threshold = LEVELS[process.env.LAB_LOG_LEVEL ?? 'warn'] ?? LEVELS.warn!;

let logger: Logger | undefined;
function pinoLogger(): Logger {
  if (!logger) {
    const { pino, destination } = createRequire(import.meta.url)('pino') as typeof import('pino');
    logger = pino({ level: process.env.LAB_LOG_LEVEL ?? 'warn', base: undefined }, destination(2));
  }
  return logger;
}

const at =
  (level: Level) =>
  (obj: object, msg?: string): void => {
    if (LEVELS[level]! >= threshold) pinoLogger()[level](obj, msg);
  };

export const log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
