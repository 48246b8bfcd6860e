import { HOST_IFNAME } from '../../topology/names.js';
import type { Node, Topology } from '../../topology/schema.js';
import { emptyPlan, leadsIntoPodRange, macFrom, peersOf, podNetworkAddress } from './common.js';
import type { PodNetwork, Tunnel, Vtep } from './types.js';

/** flanneld's defaults: the device flannel.<VNI>, VNI 1, and the kernel's VXLAN port 8472. */
const VNI = 1;
const PORT = 8472;
const DEVICE = `flannel.${VNI}`;
/** Outer IPv4 20 + UDP 8 + VXLAN 8 + the inner Ethernet header 14 (flannel's encapOverhead). */
const OVERHEAD = 50;
/** The smallest MTU the kernel lets an IPv4 interface have. */
const MIN_IPV4_MTU = 68;
const LINK_DEFAULT_MTU = 1500;

/** The MTU of a node's eth0: its network's, or the kernel's default. */
const underlayMtu = (t: Topology, node: Node) => t.networks.find((n) => n.name === node.network)?.mtu ?? LINK_DEFAULT_MTU;

/** A VTEP MAC fixed per node (flanneld picks a random one and publishes it; the lab derives it from the node's address). */
const vtepMac = (node: Node) => macFrom(['0e', 'fa'], node.address);

export function vteps(t: Topology): Vtep[] {
  return t.nodes.map((n) => ({ node: n.name, device: DEVICE, mac: vtepMac(n), address: podNetworkAddress(n), underlay: n.address }));
}

export function vxlanTunnel(t: Topology): Tunnel {
  return { kind: 'vxlan', vni: VNI, port: PORT, overhead: OVERHEAD, vteps: vteps(t) };
}

/** The MTU inside the overlay: flannel.1, every node's bridge and every pod's eth0 (the smallest underlay's, less the header). */
export const overlayMtu = (t: Topology): number => Math.min(...t.nodes.map((n) => underlayMtu(t, n))) - OVERHEAD;

/**
 * vxlan (flannel's vxlan backend, as flanneld programs it): on every node a VXLAN device
 * flannel.1 without learning, whose address is the node pod CIDR's network address /32; per
 * peer a route onlink via the peer's flannel.1 address, a permanent neighbour entry giving that
 * address the peer's VTEP MAC, and an FDB entry sending that MAC to the peer's node address.
 * The router sees only UDP between node addresses.
 */
export const vxlan: PodNetwork = {
  mode: 'vxlan',
  check(t, at) {
    t.networks.forEach((n, i) => {
      const mtu = n.mtu ?? LINK_DEFAULT_MTU;
      if (t.nodes.some((node) => node.network === n.name) && mtu - OVERHEAD < MIN_IPV4_MTU) {
        at(['networks', i, 'mtu'], `podNetwork mode vxlan: MTU ${mtu} leaves ${mtu - OVERHEAD} for pods after the ${OVERHEAD}-byte VXLAN header (outer IP 20, UDP 8, VXLAN 8, Ethernet 14); IPv4 needs at least ${MIN_IPV4_MTU}, so the MTU must be at least ${MIN_IPV4_MTU + OVERHEAD}`);
      }
    });
  },
  keepsRouterRoute: (t, route) => !leadsIntoPodRange(t, route),
  plan(t) {
    const plan = emptyPlan(t, 'vxlan');
    const mtu = overlayMtu(t);
    for (const n of t.nodes) {
      const mine = plan.nodes[n.name]!;
      mine.batch.push(
        `link add ${DEVICE} address ${vtepMac(n)} mtu ${mtu} type vxlan id ${VNI} local ${n.address} dev ${HOST_IFNAME} dstport ${PORT} nolearning`,
        `addr add ${podNetworkAddress(n)}/32 dev ${DEVICE}`,
        `link set ${DEVICE} up`,
      );
      for (const p of peersOf(t, n)) {
        const gateway = podNetworkAddress(p);
        mine.batch.push(`neigh add ${gateway} lladdr ${vtepMac(p)} dev ${DEVICE} nud permanent`, `route add ${p.podCIDR} via ${gateway} dev ${DEVICE} onlink`);
        mine.bridgeBatch.push(`fdb add ${vtepMac(p)} dev ${DEVICE} dst ${p.address} self permanent`);
      }
      // flanneld turns off router advertisements on its device; the lab has no IPv6, but says the same.
      mine.sysctls[`net/ipv6/conf/${DEVICE}/accept_ra`] = '0'; // slashes: the device name holds a dot
    }
    const label = `VXLAN VNI ${VNI}, UDP ${PORT}`;
    const drawn = t.nodes.flatMap((a, i) => t.nodes.slice(i + 1).map((b) => ({ a: a.name, b: b.name, kind: 'tunnel' as const, label })));
    return { ...plan, podMtu: mtu, tunnel: vxlanTunnel(t), drawn };
  },
  crossNodeHop: (t, from, to) => ({
    summary: `${from.name} routes ${to.podCIDR} into ${DEVICE}, which wraps it in UDP ${from.address} → ${to.address}:${PORT} (VNI ${VNI}); ${to.name}'s ${DEVICE} unwraps it`,
    tunnel: vxlanTunnel(t),
    viaRouter: false,
  }),
};
