/**
 * The cluster DNS pod's workload: a small authoritative server for the cluster domain,
 * answering A records of service names (<svc>.<ns>.svc.<domain> → ClusterIP) from the table the
 * lab passes in. UDP and TCP on each port, as kube-dns/CoreDNS serve both. Each query is logged
 * to the pod's log file with the client address it saw.
 */
import { createSocket } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import { answerQuery, describeExchange, type Zone } from './dns-message.js';
import type { PodWorkload } from './protocol.js';
import { PodSockets } from './sockets.js';

/** Open the pod's UDP and TCP sockets; the caller stands in the pod's namespace until this resolves. */
export async function serveDns(w: PodWorkload, log: (line: string) => void): Promise<PodSockets> {
  const zone: Zone = w.zone ?? { domain: 'cluster.local', records: {} };
  const exchange = (transport: string, from: string, query: Buffer) => {
    const response = answerQuery(query, zone);
    log(`${new Date().toISOString()} ${transport} from ${from}: ${describeExchange(query, response)}\n`);
    return response;
  };
  const sockets = new PodSockets();
  const opening: Promise<void>[] = [];
  for (const port of w.ports) {
    const udp = createSocket('udp4');
    udp.on('message', (msg, rinfo) => {
      const response = exchange('udp', `${rinfo.address}:${rinfo.port}`, msg);
      if (response) udp.send(response, rinfo.port, rinfo.address);
    });
    opening.push(sockets.bind(udp, port));

    // TCP: each message is preceded by its length in two bytes.
    const tcp = createServer((sock: Socket) => {
      let buffered = Buffer.alloc(0);
      sock.on('data', (chunk) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          const msg = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
          buffered = buffered.subarray(2 + msg.length);
          const response = exchange('tcp', `${sock.remoteAddress}:${sock.remotePort}`, msg);
          if (response) {
            const len = Buffer.alloc(2);
            len.writeUInt16BE(response.length, 0);
            sock.write(Buffer.concat([len, response]));
          }
        }
      });
      sock.on('error', () => sock.destroy());
    });
    opening.push(sockets.listen(tcp, port));
  }
  try {
    await Promise.all(opening);
  } catch (err) {
    sockets.close();
    throw err;
  }
  return sockets;
}
