/**
 * The cloud load balancer's health checking, in the router's namespace: every interval it asks
 * each node's health check node port (kube-proxy's server) and keeps only the nodes answering
 * 200 as next hops of the load balancer IP's route. A node answering 503 (no ready local
 * endpoint under externalTrafficPolicy Local) gets no new connections. With no healthy node
 * at all it keeps every node, as cloud load balancers do.
 *
 * Prints one "ready" line once the first round of checks has set the route.
 */
import { execFile } from 'node:child_process';
import { request } from 'node:http';

const arg = (flag: string) => {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const route = arg('--route') ?? '';
const port = Number(arg('--port') ?? 0);
const nodes = (arg('--nodes') ?? '').split(',').filter(Boolean);
const intervalMs = Number(arg('--interval') ?? 250);

function healthy(ip: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: ip, port, path: '/healthz', timeout: 200 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

function setRoute(via: string[]): Promise<void> {
  const hops = via.length === 1 ? ['via', via[0]!] : via.flatMap((v) => ['nexthop', 'via', v]);
  return new Promise((resolve) => execFile('ip', ['route', 'replace', route, ...hops], () => resolve()));
}

let current = '';
let ready = false;
async function round(): Promise<void> {
  const up = (await Promise.all(nodes.map(async (n) => ((await healthy(n)) ? n : undefined)))).filter((n): n is string => Boolean(n));
  const via = up.length > 0 ? up : nodes;
  const key = via.join(',');
  if (key !== current) {
    await setRoute(via);
    process.stderr.write(`${new Date().toISOString()} ${route} via ${key} (healthy: ${up.join(',') || 'none'})\n`);
    current = key;
  }
  if (!ready) {
    ready = true;
    process.stdout.write(`ready lb-health ${route}\n`);
  }
  setTimeout(() => void round(), intervalMs);
}
void round();
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
process.stdout.on('error', () => undefined);
