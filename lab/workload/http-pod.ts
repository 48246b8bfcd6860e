import { joinHostPort } from '../util/ipv6.js';
/**
 * A backend pod's workload: an HTTP server on each targetPort that answers with who it is and
 * the client address it saw. That last field is what makes SNAT visible.
 *
 * Whatever a client sends, only its own connection suffers: the one process serves every pod
 * of the lab, so nothing a request carries may throw out of a handler (see guard.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { guardHttpServer, guarded } from './guard.js';
import type { PodWorkload } from './protocol.js';
import { PodSockets } from './sockets.js';

/** Open the pod's listeners; the caller stands in the pod's namespace until this resolves. */
export async function serveHttp(w: PodWorkload): Promise<PodSockets> {
  const sockets = new PodSockets();
  try {
    await Promise.all([
      ...w.ports.map((port) => sockets.listen(httpServer(w, port), port)),
      // A dual-stack pod answers on its IPv6 address too.
      ...(w.ip6 !== undefined ? w.ports.map((port) => sockets.listen(httpServer(w, port), port, '::')) : []),
      // A UDP Service port: each datagram is answered with the same JSON, in one datagram.
      ...(w.udpPorts ?? []).map((port) => sockets.bind(udpServer(w, port), port)),
    ]);
  } catch (err) {
    sockets.close();
    throw err;
  }
  return sockets;
}

/** The longest /?delay=<ms> a pod honours. */
export const MAX_DELAY_MS = 60_000;

/**
 * The delay a request target asks for: /?delay=<ms>, a whole number of milliseconds up to a
 * minute; anything else (no query, not a number, a target that is no URL at all, such as "//")
 * means none. Never throws.
 */
export function requestedDelay(target: string | undefined): number {
  const q = target?.indexOf('?') ?? -1;
  if (!target || q < 0) return 0;
  const ms = Number(new URLSearchParams(target.slice(q + 1)).get('delay'));
  return Number.isFinite(ms) && ms > 0 ? Math.min(Math.floor(ms), MAX_DELAY_MS) : 0;
}

function httpServer(w: PodWorkload, port: number) {
  const server = createServer((req, res) => answer(w, port, req, res));
  server.keepAliveTimeout = 0;
  return guardHttpServer(server, `pod ${w.pod} :${port}`);
}

/** Who answered, and what it saw as the other end of the connection (after any SNAT): the same over TCP and UDP. */
export function podIdentity(w: Pick<PodWorkload, 'pod' | 'node' | 'ip'>, port: number, remoteAddress: string, remotePort: number | string) {
  return { pod: w.pod, node: w.node, podIP: w.ip, port, client: joinHostPort(remoteAddress, remotePort) };
}

/** A datagram in, one out naming the pod; guarded (a source port 0 makes send throw). */
function udpServer(w: PodWorkload, port: number): UdpSocket {
  const udp = createSocket('udp4');
  const what = `pod ${w.pod} udp :${port}`;
  udp.on('message', guarded(what, (_msg: Buffer, r: RemoteInfo) => udp.send(`${JSON.stringify(podIdentity(w, port, r.address, r.port))}\n`, r.port, r.address, () => undefined)));
  return udp;
}

function answer(w: PodWorkload, port: number, req: IncomingMessage, res: ServerResponse): void {
  const body = { ...podIdentity(w, port, req.socket.remoteAddress ?? '', req.socket.remotePort ?? ''), path: req.url };
  const send = () => {
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
    res.end(`${JSON.stringify(body)}\n`);
  };
  // /?delay=<ms> answers late: a long-lived connection, to watch an established flow keep its
  // DNAT while the endpoints change under it. A client that leaves first takes its timer along.
  const delay = requestedDelay(req.url);
  if (delay === 0) return send();
  const timer = setTimeout(send, delay);
  res.on('close', () => clearTimeout(timer));
}
