import { podNetworkOf } from '../plan/pod-network/index.js';
import type { Topology } from '../topology/schema.js';
import type { WalkHop } from './walk.js';

/**
 * The encapsulation as a hop of its own. Netfilter traces the packet inside each namespace, so a
 * walk shows node1 sending it out of flannel.1 and node2 receiving it on flannel.1; what carried
 * it in between (a UDP datagram the kernel wrapped around it, which the router only forwards) is
 * put here, between the two, from the pod network's plan. Pure.
 */
export function withTunnelHops(hops: WalkHop[], t: Topology): WalkHop[] {
  const pn = podNetworkOf(t);
  const tunnel = pn.plan(t).tunnel;
  if (!tunnel) return hops;
  const vtepOf = (host: string) => tunnel.vteps.find((v) => v.node === host);
  const out: WalkHop[] = [];
  hops.forEach((hop, i) => {
    out.push(hop);
    const from = vtepOf(hop.host);
    if (!from || hop.oif !== from.device) return;
    const next = hops.slice(i + 1).find((h) => h.direction === hop.direction && vtepOf(h.host) && h.iif === from.device);
    const to = next && vtepOf(next.host);
    const [a, b] = [t.nodes.find((n) => n.name === from.node), t.nodes.find((n) => n.name === to?.node)];
    if (!to || !a || !b) return;
    out.push({
      host: `${from.device} ${from.node} → ${to.node}`,
      direction: hop.direction,
      packet: `UDP ${from.underlay} > ${to.underlay}:${tunnel.port}, VXLAN vni ${tunnel.vni}, inner Ethernet ${from.mac} > ${to.mac}`,
      hooks: [],
      notes: [`encapsulation: ${pn.crossNodeHop(t, a, b).summary}`, `the inner packet is ${hop.host}'s, as it left ${from.device} (after any SNAT); ${tunnel.overhead} bytes of headers around it`],
      fate: 'ACCEPT',
      repeats: 0,
    });
  });
  return out;
}
