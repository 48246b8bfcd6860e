/**
 * The cluster DNS pod's workload: a small authoritative server for the cluster domain,
 * answering A records of service names (<svc>.<ns>.svc.<domain> → ClusterIP) from the
 * table the lab passes in. UDP and TCP on each port, as kube-dns/CoreDNS serve both.
 *
 * Started like the HTTP workload: inside the pod's namespace, with the lab's marker argument;
 * prints one "ready" line on stdout once every socket is bound; logs each query on stderr
 * (the pod's log file), with the client address it saw.
 */
import { createSocket } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import { answerQuery, describeExchange, type Zone } from './dns-message.js';

interface Args {
  pod: string;
  ports: number[];
  zone: Zone;
}

function parseArgs(argv: string[]): Args {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const records: Record<string, string> = {};
  for (const pair of (get('--records') ?? '').split(',').filter(Boolean)) {
    const [name, ip] = pair.split('=');
    if (name && ip) records[name.toLowerCase()] = ip;
  }
  return {
    pod: get('--pod') ?? 'dns',
    ports: (get('--ports') ?? '53').split(',').map(Number),
    zone: { domain: get('--domain') ?? 'cluster.local', records },
  };
}

const args = parseArgs(process.argv.slice(2));

function logExchange(transport: string, from: string, query: Buffer, response: Buffer | undefined): void {
  process.stderr.write(`${new Date().toISOString()} ${transport} from ${from}: ${describeExchange(query, response)}\n`);
}

let pending = args.ports.length * 2;
const bound = () => {
  pending -= 1;
  if (pending === 0) process.stdout.write(`ready ${args.pod} dns ${args.ports.join(',')}\n`);
};

for (const port of args.ports) {
  const udp = createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    const response = answerQuery(msg, args.zone);
    logExchange('udp', `${rinfo.address}:${rinfo.port}`, msg, response);
    if (response) udp.send(response, rinfo.port, rinfo.address);
  });
  udp.bind(port, '0.0.0.0', bound);

  // TCP: each message is preceded by its length in two bytes.
  const tcp = createServer((sock: Socket) => {
    let buffered = Buffer.alloc(0);
    sock.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const msg = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + msg.length);
        const response = answerQuery(msg, args.zone);
        logExchange('tcp', `${sock.remoteAddress}:${sock.remotePort}`, msg, response);
        if (response) {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(response.length, 0);
          sock.write(Buffer.concat([len, response]));
        }
      }
    });
    sock.on('error', () => sock.destroy());
  });
  tcp.listen(port, '0.0.0.0', bound);
}

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
process.stdout.on('error', () => undefined);
