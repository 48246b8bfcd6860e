/**
 * The workload process's control channel: one JSON request per line on a Unix socket in the
 * lab's state folder, one JSON answer per line. Shared by the process and the lab's client.
 */
import type { HealthCheckServer, LoadBalancerCheck } from '../plan/kube-proxy/health.js';
import type { ProxyHealthServer } from '../plan/kube-proxy/proxy-health.js';
import type { Zone } from './dns-message.js';

/** One pod's workload: what it listens on, and what it says about itself. */
export interface PodWorkload {
  pod: string;
  node: string;
  /** The pod's network namespace: its sockets are opened there. */
  ns: string;
  ip: string;
  /** The pod's IPv6 address in a dual-stack cluster: it listens on IPv6 too. */
  ip6?: string;
  ports: number[];
  /** The ports it answers datagrams on too (an HTTP pod behind a UDP Service port): the same JSON, in one datagram. */
  udpPorts?: number[];
  /** The HTTP server that reports what it saw, or the cluster DNS server. */
  kind: 'http' | 'dns';
  /** The DNS server's answer table (kind dns). */
  zone?: Zone;
}

export type ControlRequest =
  /** Open these pods' sockets (each in its own namespace); answers once every one listens. */
  | { op: 'open'; pods: PodWorkload[] }
  /** Close these pods' sockets and end their connections, as a stopped process would. */
  | { op: 'close'; pods: string[] }
  /** The pods being served now. */
  | { op: 'list' }
  /**
   * kube-proxy's health check servers and the load balancer's checks, as they should be now
   * (sent at up and after every sync): servers missing are opened, counts rewritten, servers and
   * checks no longer wanted stopped. proxies: kube-proxy's own /healthz and /livez server on
   * every node, told of each sync.
   */
  | { op: 'health'; servers: HealthCheckServer[]; loadBalancers: LoadBalancerCheck[]; proxies?: ProxyHealthServer[] };

export type ControlResponse = { ok: true; pods: string[] } | { ok: false; error: string };

/**
 * Where the workload process lives, sent as one JSON line on its stdin: `lab up` starts the
 * process before the lab's namespaces exist (Node takes longer to start than the kernel work),
 * then tells it its namespace, log file and control socket once they do.
 */
export interface HostPlacement {
  /** The lab namespace the process moves into. */
  ns: string;
  /** Its log (becomes its stderr). */
  log: string;
  control: string;
  /** The pods' log files (the DNS pod's queries). */
  logDir: string;
}

/** The control socket's file name inside the lab's state folder. */
export const CONTROL_SOCKET = 'workloads.sock';
