/**
 * The pod's workload: an HTTP server on each targetPort that answers with who it is
 * and the client address it saw. That last field is what makes SNAT visible.
 *
 * Started inside the pod's namespace by the lab; prints one "ready" line on stdout
 * once every port listens (the readiness signal), and logs nothing else there.
 * The marker argument lets `lab down` recognise its own processes.
 */
import { createServer } from 'node:http';

interface Args {
  pod: string;
  node: string;
  ip: string;
  ports: number[];
}

function parseArgs(argv: string[]): Args {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    pod: get('--pod') ?? 'pod',
    node: get('--node') ?? '',
    ip: get('--ip') ?? '',
    ports: (get('--ports') ?? '8080').split(',').map(Number),
  };
}

const args = parseArgs(process.argv.slice(2));
let listening = 0;
for (const port of args.ports) {
  const server = createServer((req, res) => {
    const answer = {
      pod: args.pod,
      node: args.node,
      podIP: args.ip,
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
  server.listen(port, '0.0.0.0', () => {
    listening += 1;
    if (listening === args.ports.length) process.stdout.write(`ready ${args.pod} ${args.ports.join(',')}\n`);
  });
}
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
// The lab closes our stdout after the ready line; never write there again.
process.stdout.on('error', () => undefined);
