/**
 * The cluster DNS pod's workload: a small authoritative server for the cluster domain,
 * answering A records of service names (<svc>.<ns>.svc.<domain> → ClusterIP) from the table the
 * lab passes in. UDP and TCP on each port, as kube-dns/CoreDNS serve both. Each query is logged
 * to the pod's log file with the client address it saw. No bytes a client sends can throw out
 * of a handler (guard.ts): a bad query costs at most its own exchange.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import { answerQuery, describeExchange, type Zone } from './dns-message.js';
import { guarded } from './guard.js';
import { podIdentity } from './http-pod.js';
import type { PodWorkload } from './protocol.js';
import { PodSockets } from './sockets.js';

type Exchange = (transport: string, from: string, query: Buffer, port: number) => Buffer | undefined;

/** Open the pod's UDP and TCP sockets; the caller stands in the pod's namespace until this resolves. */
export async function serveDns(w: PodWorkload, log: (line: string) => void): Promise<PodSockets> {
  const zone: Zone = w.zone ?? { domain: 'cluster.local', records: {} };
  const exchange: Exchange = (transport, from, query, port) => {
    // hostname.bind names this pod and the client it saw, as the HTTP pods' answers do.
    const at = from.lastIndexOf(':');
    const response = answerQuery(query, zone, JSON.stringify(podIdentity(w, port, from.slice(0, at), from.slice(at + 1))));
    log(`${new Date().toISOString()} ${transport} from ${from}: ${describeExchange(query, response)}\n`);
    return response;
  };
  const sockets = new PodSockets();
  const opening: Promise<void>[] = [];
  for (const port of w.ports) {
    const udp = createSocket('udp4');
    udp.on('message', datagramHandler(udp, exchange, `dns pod ${w.pod} udp :${port}`, port));
    opening.push(sockets.bind(udp, port));
    opening.push(sockets.listen(createServer((sock) => serveTcpClient(sock, exchange, `dns pod ${w.pod} tcp :${port}`, port)), port));
  }
  try {
    await Promise.all(opening);
  } catch (err) {
    sockets.close();
    throw err;
  }
  return sockets;
}

/**
 * One datagram in, at most one out. Guarded: a datagram from source port 0 (which a raw socket
 * can send) makes dgram's send throw at once, and so would anything answerQuery did not expect.
 */
export function datagramHandler(udp: UdpSocket, exchange: Exchange, what: string, port = 53): (msg: Buffer, rinfo: RemoteInfo) => void {
  return guarded(what, (msg, rinfo) => {
    const response = exchange('udp', `${rinfo.address}:${rinfo.port}`, msg, port);
    if (response) udp.send(response, rinfo.port, rinfo.address, () => undefined);
  });
}

/** A TCP client that does not read its answers may have this much waiting before it is cut off. */
const TCP_BACKLOG_BYTES = 1 << 20;
/** A TCP client silent this long is closed (RFC 7766 suggests seconds, not minutes). */
const TCP_IDLE_MS = 10_000;

/** DNS over TCP (RFC 1035 4.2.2): each message is preceded by its length in two bytes. */
function serveTcpClient(sock: Socket, exchange: Exchange, what: string, port: number): void {
  let buffered = Buffer.alloc(0);
  const end = () => sock.destroy();
  sock.setTimeout(TCP_IDLE_MS, end);
  sock.on('error', end);
  sock.on(
    'data',
    guarded(
      what,
      (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          const msg = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
          buffered = buffered.subarray(2 + msg.length);
          const response = exchange('tcp', `${sock.remoteAddress}:${sock.remotePort}`, msg, port);
          if (!response) continue;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(response.length, 0);
          sock.write(Buffer.concat([len, response]));
          if (sock.writableLength > TCP_BACKLOG_BYTES) return end();
        }
      },
      end,
    ),
  );
}
