/**
 * kube-proxy's service health check server, one per node: for a LoadBalancer Service with
 * externalTrafficPolicy Local it answers on spec.healthCheckNodePort with the number of the
 * Service's ready endpoints on this node, 200 when there is at least one, 503 when there is
 * none, so a load balancer stops sending to a node that would drop the traffic.
 *
 * Started inside the node's namespace by the lab. It reads the counts from a JSON file the lab
 * rewrites at every sync (as kube-proxy updates its server after each sync), per request.
 * Prints one "ready" line on stdout once every port listens.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

interface HealthState {
  /** healthCheckNodePort → the service and its ready local endpoint count. */
  [port: string]: { namespace: string; name: string; localEndpoints: number };
}

const arg = (flag: string) => {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const stateFile = arg('--state') ?? '';
const ports = (arg('--ports') ?? '').split(',').filter(Boolean).map(Number);

function readHealth(): HealthState {
  try {
    return JSON.parse(readFileSync(stateFile, 'utf8')) as HealthState;
  } catch {
    return {};
  }
}

let listening = 0;
for (const port of ports) {
  const server = createServer((_req, res) => {
    const svc = readHealth()[String(port)];
    const localEndpoints = svc?.localEndpoints ?? 0;
    // The body kube-proxy's healthcheck server writes.
    const body = { service: { namespace: svc?.namespace ?? '', name: svc?.name ?? '' }, localEndpoints, serviceProxyHealthy: true };
    res.writeHead(localEndpoints > 0 ? 200 : 503, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff', connection: 'close' });
    res.end(`${JSON.stringify(body)}\n`);
  });
  server.keepAliveTimeout = 0;
  server.listen(port, '0.0.0.0', () => {
    listening += 1;
    if (listening === ports.length) process.stdout.write(`ready health-check ${ports.join(',')}\n`);
  });
}
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
process.stdout.on('error', () => undefined);
