/**
 * A backend pod's workload: an HTTP server on each targetPort that answers with who it is and
 * the client address it saw. That last field is what makes SNAT visible.
 */
import { createServer } from 'node:http';
import type { PodWorkload } from './protocol.js';
import { PodSockets } from './sockets.js';

/** Open the pod's listeners; the caller stands in the pod's namespace until this resolves. */
export async function serveHttp(w: PodWorkload): Promise<PodSockets> {
  const sockets = new PodSockets();
  try {
    await Promise.all(w.ports.map((port) => sockets.listen(httpServer(w, port), port)));
  } catch (err) {
    sockets.close();
    throw err;
  }
  return sockets;
}

function httpServer(w: PodWorkload, port: number) {
  const server = createServer((req, res) => {
    const answer = {
      pod: w.pod,
      node: w.node,
      podIP: w.ip,
      port,
      // What this pod saw as the other end of the connection: after any SNAT.
      client: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      path: req.url,
    };
    const send = () => {
      res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
      res.end(`${JSON.stringify(answer)}\n`);
    };
    // /?delay=<ms> answers late (at most a minute): a long-lived connection, to watch an
    // established flow keep its DNAT while the endpoints change under it.
    const delay = Math.min(Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? 0) || 0, 60_000);
    if (delay > 0) setTimeout(send, delay);
    else send();
  });
  server.keepAliveTimeout = 0;
  return server;
}
