import type { TcpPacket } from '../capture/pcap.js';
import { packetInFlow, type Flow } from '../verify/flows.js';
import { joinHostPort } from '../util/ipv6.js';

/**
 * A path hop by hop, from the captures: at each observation point, the connection's first
 * packet each way (SYN, then SYN-ACK), in the order the wire saw them, and which of its
 * addresses differ from the hop before (a NAT happened in between). Pure.
 */

export interface Hop {
  point: string;
  time: number;
  src: string;
  dst: string;
  flags: string;
  /** The source or destination changed since the previous hop of this direction. */
  changed: ('src' | 'dst')[];
  /** Seen inside a tunnel: the outer header it travelled in here, e.g. "VXLAN vni 1, UDP 10.240.0.4:41000 > 10.240.0.5:8472". */
  outer?: string;
  /** The outer header's addresses, when seen inside a tunnel. */
  outerSrc?: string;
  outerDst?: string;
}

export interface PathHops {
  request: Hop[];
  reply: Hop[];
}

/** A captured packet as the flow's hop: itself, or the packet a VXLAN datagram carries, with the outer header said. */
function unwrapped(p: TcpPacket): { p: TcpPacket; outer?: string; via?: TcpPacket }[] {
  if (!p.vxlan) return [{ p }];
  return [{ p: p.vxlan.inner, outer: `VXLAN vni ${p.vxlan.vni}, UDP ${joinHostPort(p.src, p.sport)} > ${joinHostPort(p.dst, p.dport)}`, via: p }];
}

export function pathHops(flow: Flow, packets: Record<string, TcpPacket[]>): PathHops {
  const pick = (flags: string) => {
    // A point may see the packet twice, differently addressed: a node's eth0 sees it arrive and,
    // translated, leave. Each distinct look is a hop; a retransmission is not.
    const seen = new Set<string>();
    const hops = Object.entries(packets)
      .flatMap(([point, pkts]) => pkts.flatMap(unwrapped).filter(({ p }) => p.flags === flags && packetInFlow(p, flow)).map(({ p, outer, via }) => ({ point, p, outer, via })))
      .filter(({ point, p, outer }) => {
        const key = `${point} ${joinHostPort(p.src, p.sport)} ${joinHostPort(p.dst, p.dport)} ${outer ?? ''}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      })
      .sort((a, b) => a.p.time - b.p.time)
      .map(({ point, p, outer, via }) => ({ point, time: p.time, src: joinHostPort(p.src, p.sport), dst: joinHostPort(p.dst, p.dport), flags: p.flags, changed: [] as ('src' | 'dst')[], ...(outer && via ? { outer, outerSrc: joinHostPort(via.src, via.sport), outerDst: joinHostPort(via.dst, via.dport) } : {}) }));
    hops.forEach((h, i) => {
      const prev = hops[i - 1];
      if (prev && prev.src !== h.src) h.changed.push('src');
      if (prev && prev.dst !== h.dst) h.changed.push('dst');
    });
    return hops;
  };
  return { request: pick('S'), reply: pick('S.') };
}
