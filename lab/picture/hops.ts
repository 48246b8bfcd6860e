import type { TcpPacket } from '../capture/pcap.js';
import { packetInFlow, type Flow } from '../verify/flows.js';

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
}

export interface PathHops {
  request: Hop[];
  reply: Hop[];
}

export function pathHops(flow: Flow, packets: Record<string, TcpPacket[]>): PathHops {
  const pick = (flags: string) => {
    // A point may see the packet twice, differently addressed: a node's eth0 sees it arrive and,
    // translated, leave. Each distinct look is a hop; a retransmission is not.
    const seen = new Set<string>();
    const hops = Object.entries(packets)
      .flatMap(([point, pkts]) => pkts.filter((x) => x.flags === flags && packetInFlow(x, flow)).map((p) => ({ point, p })))
      .filter(({ point, p }) => {
        const key = `${point} ${p.src}:${p.sport} ${p.dst}:${p.dport}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      })
      .sort((a, b) => a.p.time - b.p.time)
      .map(({ point, p }) => ({ point, time: p.time, src: `${p.src}:${p.sport}`, dst: `${p.dst}:${p.dport}`, flags: p.flags, changed: [] as ('src' | 'dst')[] }));
    hops.forEach((h, i) => {
      const prev = hops[i - 1];
      if (prev && prev.src !== h.src) h.changed.push('src');
      if (prev && prev.dst !== h.dst) h.changed.push('dst');
    });
    return hops;
  };
  return { request: pick('S'), reply: pick('S.') };
}
