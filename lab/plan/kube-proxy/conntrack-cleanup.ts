import type { Topology } from '../../topology/schema.js';
import { servicePorts } from '../endpoints.js';

/**
 * kube-proxy's conntrack reconciler (pkg/proxy/conntrack/cleanup.go, since v1.32; endpoint ports
 * compared since v1.33), as data. After every sync kube-proxy lists the node's conntrack table
 * and deletes the UDP entries that go to a Service frontend but whose reply comes from no
 * serving endpoint of it: such an entry would keep sending a client's datagrams where no
 * endpoint is (UDP has no connection to end). TCP entries are left alone: they end with the
 * connection. Pure: lab/api/pods.ts reads the table and deletes what this returns.
 */

/** What the reconciler reads of a conntrack entry (lab/kernel/conntrack.ts's entries have it). */
export interface ConntrackFlow {
  protocol: string;
  original: { dst: string; dport: number };
  reply: { src: string; sport: number };
}

/** The serving endpoints ("ip:port") of the UDP frontends of a topology. */
export interface UdpFrontends {
  /** "serviceIP:port" (ClusterIP, LoadBalancer IPs, external IPs) → serving endpoints. */
  byAddress: Map<string, Set<string>>;
  /** NodePort → serving endpoints (kube-proxy matches any destination address with that port). */
  byNodePort: Map<number, Set<string>>;
}

export interface ReconcileOptions {
  /**
   * Also clean the frontends of ports with no serving endpoint (as if their set were empty).
   * v1.34 skips them ("a Service without endpoints does not require to clean the conntrack
   * entries"); kubernetes PR 139629, merged after v1.34, processes them. Off by default.
   */
  withoutEndpoints?: boolean;
}

/**
 * Every UDP service port's frontends with its serving endpoints: ready ones and serving
 * terminating ones alike (upstream takes neither traffic policies, topology nor termination
 * into account, so a change of those does not break existing flows).
 */
export function udpFrontends(t: Topology, opts: ReconcileOptions = {}): UdpFrontends {
  const out: UdpFrontends = { byAddress: new Map(), byNodePort: new Map() };
  for (const sp of servicePorts(t)) {
    if (sp.protocol !== 'udp') continue;
    const serving = new Set([...sp.endpoints, ...sp.terminating].map((e) => e.address));
    if (serving.size === 0 && !opts.withoutEndpoints) continue;
    const { service, port } = sp;
    for (const ip of [service.clusterIP, ...(service.type === 'LoadBalancer' ? service.loadBalancerIPs : []), ...service.externalIPs]) {
      out.byAddress.set(`${ip}:${port.port}`, serving);
    }
    if (service.type !== 'ClusterIP' && port.nodePort) out.byNodePort.set(port.nodePort, serving);
  }
  return out;
}

/** One deletion, as upstream's conntrack filter has it: the original destination and the reply source. */
export interface StaleUdpFilter {
  /** Absent for a NodePort filter (any original destination address). */
  origDst?: string;
  origDport: number;
  replySrc: string;
  replySport: number;
}

/** The filters that delete the stale UDP entries of `entries` (one per distinct filter, in entry order). */
export function staleUdpFilters(frontends: UdpFrontends, entries: readonly ConntrackFlow[]): StaleUdpFilter[] {
  const out = new Map<string, StaleUdpFilter>();
  const add = (f: StaleUdpFilter) => out.set(`${f.origDst ?? '*'}:${f.origDport}<${f.replySrc}:${f.replySport}`, f);
  for (const e of entries) {
    if (e.protocol !== 'udp') continue;
    const reply = `${e.reply.src}:${e.reply.sport}`;
    const byAddress = frontends.byAddress.get(`${e.original.dst}:${e.original.dport}`);
    if (byAddress && !byAddress.has(reply)) add({ origDst: e.original.dst, origDport: e.original.dport, replySrc: e.reply.src, replySport: e.reply.sport });
    const byNodePort = frontends.byNodePort.get(e.original.dport);
    if (byNodePort && !byNodePort.has(reply)) add({ origDport: e.original.dport, replySrc: e.reply.src, replySport: e.reply.sport });
  }
  return [...out.values()];
}

/** Whether a filter deletes an entry (what the kernel's filtered delete does with it). */
export function filterMatches(f: StaleUdpFilter, e: ConntrackFlow): boolean {
  return (
    e.protocol === 'udp' &&
    (f.origDst === undefined || e.original.dst === f.origDst) &&
    e.original.dport === f.origDport &&
    e.reply.src === f.replySrc &&
    e.reply.sport === f.replySport
  );
}

/** conntrack -D arguments for one filter. */
export function filterArgs(f: StaleUdpFilter): string[] {
  return ['-D', '-p', 'udp', ...(f.origDst ? ['--orig-dst', f.origDst] : []), '--orig-port-dst', String(f.origDport), '--reply-src', f.replySrc, '--reply-port-src', String(f.replySport)];
}
