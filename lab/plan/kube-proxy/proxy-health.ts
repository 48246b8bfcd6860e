/**
 * kube-proxy's own health server (pkg/proxy/healthcheck/proxy_health.go, v1.34): /healthz and
 * /livez on port 10256, as data. Pure: what a server answers given kube-proxy's sync state and
 * the node's. Served on every node by the lab's workload process (workload/proxy-health-server.ts).
 */
import type { Topology } from '../../topology/schema.js';
import { namespaceName } from '../../topology/names.js';

/** --healthz-bind-address's default port (0.0.0.0:10256). */
export const PROXY_HEALTH_PORT = 10256;
/** kube-proxy's healthTimeout: twice its sync period (30 s by default). */
export const PROXY_HEALTH_TIMEOUT_MS = 2 * 30_000;

export interface ProxyHealthState {
  /** When the last sync finished (undefined: none yet). */
  lastUpdated?: number;
  /** When the oldest change not yet synced was queued (undefined: nothing pending). */
  oldestPending?: number;
  /** The node is neither being deleted nor tainted ToBeDeletedByClusterAutoscaler. */
  nodeEligible: boolean;
  /** How long a queued change may wait for its sync before kube-proxy counts as unhealthy. */
  healthTimeoutMs: number;
}

export interface ProxyHealthAnswer {
  status: 200 | 503;
  body: string;
}

/** The taint the cluster autoscaler puts on a node before deleting it: /healthz turns 503. */
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

/** The node's eligibility as SyncNode decides it: not being deleted, not tainted to be deleted. */
export function nodeEligible(node: { deleting?: boolean; taints?: readonly { key: string }[] }): boolean {
  return !node.deleting && !(node.taints ?? []).some((t) => t.key === TO_BE_DELETED_TAINT);
}

/** Healthy unless a queued change has waited longer than the timeout (a proxy starting up is healthy). */
const syncHealthy = (s: ProxyHealthState, now: number) => s.lastUpdated === undefined || s.oldestPending === undefined || now - s.oldestPending < s.healthTimeoutMs;

/**
 * Go's time.Time String() as fmt's %q prints it: "2006-01-02 15:04:05.999999999 +0000 UTC"
 * (fraction without trailing zeros), then " m=+<seconds>.<9 digits>" for a clock reading
 * (monotonic seconds since the process started). The zero time has no monotonic part.
 */
export function goTime(ms: number | undefined, monotonicMs?: number): string {
  if (ms === undefined) return '0001-01-01 00:00:00 +0000 UTC';
  const iso = new Date(ms).toISOString(); // 2026-12-07T08:20:00.123Z
  const fraction = iso.slice(20, 23).replace(/0+$/, '');
  const text = `${iso.slice(0, 10)} ${iso.slice(11, 19)}${fraction ? `.${fraction}` : ''} +0000 UTC`;
  if (monotonicMs === undefined) return text;
  const ns = Math.round(monotonicMs * 1e6);
  return `${text} m=+${Math.floor(ns / 1e9)}.${String(ns % 1e9).padStart(9, '0')}`;
}

/** The times both handlers print: lastUpdated is "now" when healthy (upstream keeps its old meaning, the last sync loop run), the last sync otherwise. */
function times(healthy: boolean, s: ProxyHealthState, now: number, startedAt: number) {
  const clock = (ms: number | undefined) => goTime(ms, ms === undefined ? undefined : ms - startedAt);
  return `"lastUpdated": ${JSON.stringify(clock(healthy ? now : s.lastUpdated))},"currentTime": ${JSON.stringify(clock(now))}`;
}

/**
 * /healthz: 200 while the syncs keep up and the node is eligible, else 503. `startedAt` is the
 * process start, for Go's monotonic clock reading.
 */
export function healthz(s: ProxyHealthState, now: number, startedAt: number): ProxyHealthAnswer {
  const healthy = syncHealthy(s, now) && s.nodeEligible;
  return { status: healthy ? 200 : 503, body: `{${times(healthy, s, now, startedAt)}, "nodeEligible": ${s.nodeEligible}}` };
}

/** /livez: as /healthz but blind to the node (a node being deleted keeps a live kube-proxy). */
export function livez(s: ProxyHealthState, now: number, startedAt: number): ProxyHealthAnswer {
  const healthy = syncHealthy(s, now);
  return { status: healthy ? 200 : 503, body: `{${times(healthy, s, now, startedAt)}}` };
}

/** One node's kube-proxy health server, as the workload process runs it. */
export interface ProxyHealthServer {
  node: string;
  /** The node's namespace: the server listens there. */
  ns: string;
  /** --healthz-bind-address's default, 0.0.0.0:10256: every address of the node, in both proxy modes. */
  address: string;
  port: number;
  /** SyncNode's verdict: the node is neither being deleted nor tainted to be deleted. */
  nodeEligible: boolean;
  healthTimeoutMs: number;
  /** A Node change only (SyncNode, `lab node`): no sync ran, so lastUpdated stays the last sync's. */
  nodeOnly?: boolean;
}

/** kube-proxy's health server on every node of the lab (it runs one whatever the Services). */
export function proxyHealthServers(t: Pick<Topology, 'lab' | 'nodes'>): ProxyHealthServer[] {
  return t.nodes.map((n) => ({
    node: n.name,
    ns: namespaceName(t.lab, n.name),
    address: '0.0.0.0',
    port: PROXY_HEALTH_PORT,
    nodeEligible: nodeEligible(n),
    healthTimeoutMs: PROXY_HEALTH_TIMEOUT_MS,
  }));
}
