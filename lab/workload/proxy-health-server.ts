/**
 * kube-proxy's own health server on one node (pkg/proxy/healthcheck/proxy_health.go, v1.34):
 * /healthz and /livez on port 10256, answered from the state of the node's last sync
 * (plan/kube-proxy/proxy-health.ts decides status and body). Every other path is Go's ServeMux
 * 404. The lab sends an update after every sync of the node's rules: that is lastUpdated.
 */
import { createServer } from 'node:http';
import { guardHttpServer } from './guard.js';
import { healthz, livez, type ProxyHealthServer as Config, type ProxyHealthState } from '../plan/kube-proxy/proxy-health.js';
import { PodSockets } from './sockets.js';

/** When this process started, for the monotonic clock reading Go prints (m=+…). */
const STARTED_AT = Date.now() - process.uptime() * 1000;

export class ProxyHealthServer {
  private state: ProxyHealthState;

  private constructor(
    config: Config,
    private readonly sockets: PodSockets,
  ) {
    this.state = stateOf(config);
  }

  /** Listen on the node's address(es); the caller stands in the node's namespace until this resolves. */
  static async open(config: Config): Promise<ProxyHealthServer> {
    const sockets = new PodSockets();
    const server = new ProxyHealthServer(config, sockets);
    const http = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const answer = path === '/healthz' ? healthz(server.state, Date.now(), STARTED_AT) : path === '/livez' ? livez(server.state, Date.now(), STARTED_AT) : undefined;
      if (!answer) {
        const body = '404 page not found\n';
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      res.writeHead(answer.status, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff', 'Content-Length': Buffer.byteLength(answer.body) });
      res.end(answer.body);
    });
    guardHttpServer(http, `kube-proxy health server ${config.ns}:${config.port}`);
    await sockets.listenOrClose(http, config.port, config.address);
    return server;
  }

  /** A sync finished (its time, and the node's eligibility as the sync saw it), or the Node changed alone (SyncNode: eligibility only). */
  update(config: Config): void {
    this.state = config.nodeOnly ? { ...this.state, nodeEligible: config.nodeEligible } : stateOf(config);
  }

  close(): void {
    this.sockets.close();
  }
}

const stateOf = (c: Config): ProxyHealthState => ({ lastUpdated: Date.now(), nodeEligible: c.nodeEligible, healthTimeoutMs: c.healthTimeoutMs });

export const proxyHealthKey = (s: { ns: string; port: number }) => `${s.ns}:${s.port}`;
