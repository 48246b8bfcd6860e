/**
 * The lab's one workload process: it serves every pod's sockets, each socket opened inside its
 * pod's network namespace (see netns.ts), so each pod still listens on its own address and
 * answers with its own name. One process instead of one per pod: tens of megabytes for the lab
 * instead of tens per pod, and a pod starts in a millisecond.
 *
 * Started by the lab inside one of the lab's namespaces, with the lab's marker argument (so
 * `lab down` and its sweep find it by pid and marker). It prints one "ready" line on stdout
 * once its control socket listens, then takes requests there (protocol.ts): open or close
 * exactly the pods asked for. Logs go to stderr (a file in the lab's state folder); the DNS
 * pods' queries to each pod's own log file.
 */
import { appendFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { HealthCheckServer, LoadBalancerCheck } from '../plan/kube-proxy/health.js';
import type { HealthServer } from './health-server.js';
import type { ProxyHealthServer } from './proxy-health-server.js';
import type { ProxyHealthServer as ProxyHealthConfig } from '../plan/kube-proxy/proxy-health.js';
import { logFailure } from './guard.js';
import { serveHttp } from './http-pod.js';
import type { LoadBalancerChecker } from './load-balancer.js';
import { enterHome, inNamespace, redirectStderr } from './netns.js';
import type { ControlRequest, ControlResponse, HostPlacement, PodWorkload } from './protocol.js';
import type { PodSockets } from './sockets.js';

const pods = new Map<string, PodSockets>();

async function open(w: PodWorkload): Promise<void> {
  if (pods.has(w.pod)) return;
  const logFile = join(logDir, `${w.pod}.log`);
  // The DNS pod's code (and its wire format library) loads only for a lab that has one: `up` waits for this process to be ready.
  const serveDns = w.kind === 'dns' ? (await import('./dns-pod.js')).serveDns : undefined;
  const sockets = await inNamespace(w.ns, () => (serveDns ? serveDns(w, (line) => appendFileSync(logFile, line)) : serveHttp(w)));
  pods.set(w.pod, sockets);
}

function close(pod: string): void {
  pods.get(pod)?.close();
  pods.delete(pod);
}

/** kube-proxy's health check servers (node namespace:port) and the load balancer's checks (router namespace, route). */
const healthServers = new Map<string, HealthServer>();
const checkers = new Map<string, LoadBalancerChecker>();
/** kube-proxy's own /healthz and /livez servers (node namespace:10256). */
const proxyServers = new Map<string, ProxyHealthServer>();

async function syncHealth(servers: HealthCheckServer[], loadBalancers: LoadBalancerCheck[], proxies: ProxyHealthConfig[]): Promise<void> {
  // Loaded on the first health request (sent after the first sync).
  const [{ HealthServer, healthServerKey }, { checkerKey, LoadBalancerChecker }, { ProxyHealthServer, proxyHealthKey }] = await Promise.all([import('./health-server.js'), import('./load-balancer.js'), import('./proxy-health-server.js')]);
  await reconcile(proxyServers, proxies, proxyHealthKey, (c) => inNamespace(c.ns, () => ProxyHealthServer.open(c)));
  await reconcile(healthServers, servers, healthServerKey, (c) => inNamespace(c.ns, () => HealthServer.open(c)));
  // Checks start once every server listens, so no first probe meets a closed port.
  await reconcile(checkers, loadBalancers, checkerKey, (c) => {
    const checker = new LoadBalancerChecker(c, (line) => process.stderr.write(line));
    checker.start();
    return checker;
  });
}

/** Make `running` hold exactly what `wanted` lists: the others closed, the running ones updated, the missing started. */
async function reconcile<C, R extends { update(c: C): void; close(): void }>(running: Map<string, R>, wanted: C[], key: (c: C) => string, start: (c: C) => R | Promise<R>): Promise<void> {
  const keys = new Set(wanted.map(key));
  for (const [k, r] of running) {
    if (keys.has(k)) continue;
    r.close();
    running.delete(k);
  }
  for (const c of wanted) {
    const r = running.get(key(c));
    if (r) r.update(c);
    else running.set(key(c), await start(c));
  }
}

async function handle(req: ControlRequest): Promise<ControlResponse> {
  try {
    if (req.op === 'open') for (const w of req.pods) await open(w);
    else if (req.op === 'close') for (const p of req.pods) close(p);
    else if (req.op === 'health') await syncHealth(req.servers, req.loadBalancers, req.proxies ?? []);
    return { ok: true, pods: [...pods.keys()] };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

const control = createServer((conn) => {
  let buffered = '';
  conn.on('data', (chunk) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let req: ControlRequest;
      try {
        req = JSON.parse(line) as ControlRequest;
      } catch {
        conn.write(`${JSON.stringify({ ok: false, error: 'not JSON' })}\n`);
        continue;
      }
      void handle(req).then((res) => conn.write(`${JSON.stringify(res)}\n`));
    }
  });
  conn.on('error', () => conn.destroy());
});

let controlPath: string | undefined;
let logDir = '';

/**
 * Wait on stdin for where to live (protocol.ts: HostPlacement), move there, listen, say ready.
 * stdin ending before the ready line means the lab that started us is gone (even SIGKILLed):
 * exit, leaving nothing. After the ready line the lab closes stdin; that end means nothing.
 */
let placed = false;
let ready = false;
let input = '';
process.stdin.on('data', (chunk: Buffer) => {
  if (placed) return;
  input += chunk.toString();
  const nl = input.indexOf('\n');
  if (nl < 0) return;
  placed = true;
  try {
    const where = JSON.parse(input.slice(0, nl)) as HostPlacement;
    redirectStderr(where.log);
    enterHome(where.ns);
    controlPath = where.control;
    logDir = where.logDir;
    rmSync(controlPath, { force: true });
    control.listen(controlPath, () => {
      ready = true;
      process.stdout.write(`ready ${process.pid}\n`);
    });
  } catch (err) {
    process.stderr.write(`workload host: cannot take its place: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
});
const stop = () => {
  if (controlPath) rmSync(controlPath, { force: true });
  process.exit(0);
};
process.stdin.on('end', () => {
  if (!ready) stop();
});
process.stdin.on('error', () => undefined);
process.on('SIGTERM', stop);
// The last resort, should a handler escape its guard (guard.ts): every pod of the lab lives in
// this process, so one client's exception must not end them all. The log line names it ("uncaught"),
// and the fuzz test (test/e2e/workload-fuzz.test.ts) fails on any such line.
process.on('uncaughtException', (err) => logFailure('workload host: uncaught exception', err));
process.on('unhandledRejection', (err) => logFailure('workload host: uncaught rejection', err));
process.on('SIGINT', stop);
// The lab closes our stdout after the ready line; never write there again.
process.stdout.on('error', () => undefined);
