import { destination, pino, type Logger } from 'pino';

/**
 * Structured logs go to stderr so stdout stays for the human report or --json.
 * LAB_LOG_LEVEL=debug shows every command the lab runs.
 */
export const log: Logger = pino(
  { level: process.env.LAB_LOG_LEVEL ?? 'warn', base: undefined },
  destination(2),
);
