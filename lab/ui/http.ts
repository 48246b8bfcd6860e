import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ExitCode, LabError } from '../errors.js';

/**
 * A small HTTP server for one page on the loopback address, and nothing else: it listens on
 * 127.0.0.1 only, answers 401 to every request without the token the URL carries (the page
 * sends it back on each call), 421 to a Host header that is not its own address (a rebinding
 * web page), and serves a fixed table of routes. Server-sent events carry live updates.
 */

export const LOOPBACK = '127.0.0.1';
const MAX_BODY = 16 * 1024;

export type Handler = (req: IncomingMessage, body: unknown, res: ServerResponse) => Promise<unknown> | unknown;

export interface Routes {
  /** "GET /", "POST /api/send", ... A handler's return value is sent as JSON (undefined: it answered itself). */
  [methodAndPath: string]: Handler;
}

export const newToken = () => randomBytes(24).toString('base64url');

function tokenMatches(given: string | null | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A request the page got wrong: its status and message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  if (req.method !== 'POST') return undefined;
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, 'request body too large');
    chunks.push(chunk);
  }
  if (chunks.length === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'the body is not JSON');
  }
}

const send = (res: ServerResponse, status: number, body: string, type = 'application/json') => {
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
};

async function answer(routes: Routes, token: string, port: () => number, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', `http://${LOOPBACK}`);
  const host = req.headers.host ?? '';
  if (host !== `${LOOPBACK}:${port()}` && host !== `localhost:${port()}`) return send(res, 421, JSON.stringify({ error: 'wrong Host header' }));
  if (!tokenMatches(url.searchParams.get('token') ?? req.headers['x-lab-token']?.toString(), token)) return send(res, 401, JSON.stringify({ error: 'a token is needed: open the URL lab ui printed' }));
  const handler = routes[`${req.method} ${url.pathname}`];
  if (!handler) return send(res, 404, JSON.stringify({ error: `no ${req.method} ${url.pathname}` }));
  try {
    const result = await handler(req, await readBody(req), res);
    if (result !== undefined && !res.headersSent) send(res, 200, JSON.stringify(result));
  } catch (err) {
    if (res.headersSent) return void res.end();
    const status = err instanceof HttpError ? err.status : err instanceof LabError && err.exitCode === ExitCode.badInput ? 400 : err instanceof LabError && err.exitCode === ExitCode.labState ? 409 : 500;
    send(res, status, JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
  }
}

export const sendHtml = (res: ServerResponse, html: string) => {
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // Everything inline; nothing may be loaded from anywhere, this server included, but its own API.
    'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'",
  });
  res.end(html);
};

/** Listen on 127.0.0.1:port (0: any free port); resolves with the server and the port it got. */
export function listenLoopback(routes: Routes, token: string, port: number): Promise<{ server: Server; port: number }> {
  let bound = port;
  const server = createServer((req, res) => void answer(routes, token, () => bound, req, res));
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new LabError(err.code === 'EADDRINUSE' ? `--port ${port}: ${LOOPBACK}:${port} is in use` : `cannot listen on ${LOOPBACK}:${port}: ${err.message}`, ExitCode.badInput)),
    );
    server.listen(port, LOOPBACK, () => {
      bound = (server.address() as { port: number }).port;
      resolve({ server, port: bound });
    });
  });
}

/** The page's open event streams: each new one first gets what `replay` says, then every broadcast. */
export class EventHub {
  private readonly clients = new Set<ServerResponse>();
  private readonly keepAlive: NodeJS.Timeout;

  constructor(private readonly replay: () => { event: string; data: unknown }[]) {
    this.keepAlive = setInterval(() => this.clients.forEach((c) => c.write(': keep-alive\n\n')), 15_000);
    this.keepAlive.unref();
  }

  open(req: IncomingMessage, res: ServerResponse): undefined {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    this.clients.add(res);
    req.on('close', () => this.clients.delete(res));
    for (const e of this.replay()) res.write(frame(e.event, e.data));
    return undefined;
  }

  broadcast(event: string, data: unknown): void {
    const text = frame(event, data);
    for (const c of this.clients) c.write(text);
  }

  close(): void {
    clearInterval(this.keepAlive);
    for (const c of this.clients) c.end();
    this.clients.clear();
  }
}

const frame = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
