/**
 * The cloud load balancer's health checking, for one route to a load balancer IP: every
 * interval it sends a real HTTP probe from the router's namespace to each node's health check
 * node port (kube-proxy's server), and keeps as next hops only the nodes that pass. A node
 * that fails `unhealthyThreshold` probes in a row gets no new connections; one that passes
 * `healthyThreshold` in a row gets them again. With no healthy node it keeps every node (fail
 * open), as cloud load balancers do. The route is replaced inside the router's namespace only.
 */
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterProbe, nextHopsOf, type LoadBalancerCheck, type NodeHealth } from '../plan/kube-proxy/health.js';
import { logFailure } from './guard.js';
import { inNamespace } from './netns.js';

export interface ProbeResult {
  node: string;
  status?: number;
  error?: string;
}

export class LoadBalancerChecker {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Each node's state as the load balancer sees it (absent: never probed; the first probe decides). */
  private readonly health = new Map<string, NodeHealth>();
  /** The next hops this checker installed (none yet: the first round installs its own). */
  private via: string | undefined;

  constructor(
    private check: LoadBalancerCheck,
    private readonly log: (line: string) => void,
  ) {}

  start(): void {
    void this.round();
  }

  update(check: LoadBalancerCheck): void {
    this.check = check;
  }

  close(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** One round of probes, then the next: a round that fails is logged, and the checks go on. */
  private async round(): Promise<void> {
    try {
      await this.probeAll();
    } catch (err) {
      logFailure(`load balancer ${this.check.router}`, err);
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.round(), this.check.intervalMs);
  }

  private async probeAll(): Promise<void> {
    const { nodes } = this.check;
    const results = await Promise.all(nodes.map((n) => this.probe(n)));
    for (const r of results) this.health.set(r.node, afterProbe(this.health.get(r.node) ?? { healthy: undefined, streak: 0 }, r.status === 200, this.check));
    const want = nextHopsOf(nodes, (n) => this.health.get(n)?.healthy);
    if (!this.stopped && want.join(',') !== this.via) {
      const error = await this.replaceRoute(want);
      const seen = results.map((r) => `${r.node}=${r.status ?? r.error}`).join(' ');
      this.log(`${new Date().toISOString()} load balancer ${this.check.router}: ${this.check.to} via ${want.join(',')} (probes :${this.check.port} ${seen})${error ? ` FAILED: ${error}` : ''}\n`);
      if (!error) this.via = want.join(',');
    }
  }

  /** GET /healthz on the node's health check node port, from the router's namespace. */
  private async probe(node: string): Promise<ProbeResult> {
    const { ns, port, timeoutMs } = this.check;
    let socket: Socket;
    try {
      // The socket is made while the thread stands in the router's namespace; it connects at once on the lab's links.
      socket = await inNamespace(ns, () => connectWithin(node, port, timeoutMs));
    } catch (err) {
      return { node, error: err instanceof Error ? err.message : String(err) };
    }
    return new Promise((resolve) => {
      const req = request({ host: node, port, path: '/healthz', createConnection: () => socket, headers: { connection: 'close' }, timeout: timeoutMs }, (res) => {
        res.resume();
        res.on('end', () => resolve({ node, status: res.statusCode }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => resolve({ node, error: err.message }));
      req.end();
    });
  }

  private replaceRoute(via: string[]): Promise<string | undefined> {
    const hops = via.length === 1 ? ['via', via[0]!] : via.flatMap((v) => ['nexthop', 'via', v]);
    return new Promise((resolve) => execFile('ip', ['-n', this.check.ns, 'route', 'replace', this.check.to, ...hops], (err, _out, stderr) => resolve(err ? stderr.trim() || err.message : undefined)));
  }
}

function connectWithin(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('timeout'));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export const checkerKey = (c: { ns: string; to: string }) => `${c.ns} ${c.to}`;
