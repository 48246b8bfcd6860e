/**
 * kube-proxy's service health check server on one node, for one Service: on the Service's
 * healthCheckNodePort it answers 200 while the node has a ready local endpoint and 503 when it
 * has none, with the JSON body kube-proxy writes. The count is rewritten after every sync
 * (kube-proxy's SyncEndpoints), so a load balancer probing it follows the endpoints.
 */
import { createServer } from 'node:http';
import { guardHttpServer } from './guard.js';
import { healthCheckBody, type HealthCheckServer } from '../plan/kube-proxy/health.js';
import { PodSockets } from './sockets.js';

export class HealthServer {
  private constructor(
    private config: HealthCheckServer,
    private readonly sockets: PodSockets,
  ) {}

  /** Listen on the node's address(es); the caller stands in the node's namespace until this resolves. */
  static async open(config: HealthCheckServer): Promise<HealthServer> {
    const sockets = new PodSockets();
    const server = new HealthServer(config, sockets);
    const http = createServer((_req, res) => {
      const { namespace, name, localEndpoints } = server.config;
      // Any path: kube-proxy's handler does not look at it. serviceProxyHealthy: the lab's rules were just synced.
      const body = healthCheckBody(namespace, name, localEndpoints);
      res.writeHead(localEndpoints > 0 ? 200 : 503, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
    guardHttpServer(http, `health check server ${config.ns}:${config.port}`);
    await sockets.listenOrClose(http, config.port, config.address);
    return server;
  }

  /** The count after a sync (and the service name, should a port change hands). */
  update(config: HealthCheckServer): void {
    this.config = config;
  }

  close(): void {
    this.sockets.close();
  }
}

export const healthServerKey = (s: { ns: string; port: number }) => `${s.ns}:${s.port}`;
