/**
 * The workload process serves every pod of a lab, so one client's bytes must never throw out
 * of a handler: an uncaught exception would end every pod at once. Each handler that touches
 * what a client sent runs inside `guarded`, which logs the failure (one line on the process's
 * stderr, its log) and ends only that client's exchange.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/** Log a handler's failure: the pod or server it belongs to, and what went wrong. */
export function logFailure(what: string, err: unknown): void {
  const why = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  process.stderr.write(`${new Date().toISOString()} ${what}: handler failed, only this client is affected: ${why}\n`);
}

/** `fn` with any exception caught and logged; `onFailure` then ends the exchange (close a socket, answer 500). */
export function guarded<A extends unknown[]>(what: string, fn: (...args: A) => void, onFailure?: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      logFailure(what, err);
      try {
        onFailure?.(...args);
      } catch {
        /* the exchange is already gone */
      }
    }
  };
}

/** Receiving a request's head, and its whole request, may take this long: a client that trickles bytes is cut off. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;

/**
 * An HTTP server whose request handlers cannot take the process down: each runs guarded (a
 * failure answers 500 and closes that connection), and a client that sends its request too
 * slowly is cut off. Malformed requests (a broken request line, bad headers, a head over
 * Node's 16 KB) never reach a handler: Node answers them 400 or 431 and closes the connection.
 */
export function guardHttpServer<S extends Server>(server: S, what: string): S {
  const handlers = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  const answer500 = (_req: IncomingMessage, res: ServerResponse) => {
    if (!res.headersSent) res.writeHead(500, { connection: 'close' });
    res.end();
  };
  for (const h of handlers) server.on('request', guarded(what, h, answer500));
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  return server;
}
