import type { Pod, ProxyMode } from '../topology/schema.js';
import type { EndpointChangeResult } from './pods.js';

/** What `lab kill` teaches: why new connections avoid the pod while existing ones keep their translation. */
export function killExplanation(pod: Pod, ports: number[], existing: number, udpFlushed: EndpointChangeResult['udpFlushed'], keepRunning: boolean, mode: ProxyMode = 'iptables'): string[] {
  const addr = `${pod.address}:${ports.join(',')}`;
  const flushed = udpFlushed.reduce((n, f) => n + f.entries, 0);
  return [
    `New connections: every node's ${mode === 'nftables' ? 'service- (and local-) chains no longer pick' : 'KUBE-SVC (and KUBE-SVL) chains no longer list'} ${addr}, so from now on no new connection is translated to ${pod.name}.`,
    `Existing connections: rules decide only a connection's first packet (conntrack state NEW). Conntrack remembers each connection's translation and applies it to every later packet, so the ${existing} ${existing === 1 ? 'entry' : 'entries'} above keep their DNAT to ${addr} until the connection ends or the entry expires (TIME_WAIT 120 s, ESTABLISHED up to 5 days); kube-proxy flushes such entries for UDP only.`,
    ...(flushed > 0 ? [`UDP: as kube-proxy does, the lab deleted the ${flushed} UDP conntrack entries of ${pod.name}'s UDP ports, so the next datagram of those flows is balanced anew.`] : []),
    keepRunning
      ? `The workload still runs (a failed readiness probe): established connections keep being served by ${pod.name}.`
      : `The workload was stopped: ${pod.name}'s sockets and connections were closed, and a late packet of an old connection still goes to ${pod.address}, which now answers with a reset.`,
  ];
}
