import { isDualStack, ipv6View } from '../../topology/family.js';
import { HOST_IFNAME } from '../../topology/names.js';
import type { Node, Topology } from '../../topology/schema.js';
import { emptyPlan, leadsIntoPodRange, macFrom, peersOf, podNetworkAddress } from './common.js';
import type { PodNetwork, Tunnel, Vtep } from './types.js';

/** flanneld's defaults: the device flannel.<VNI>, VNI 1, and the kernel's VXLAN port 8472. */
const VNI = 1;
const PORT = 8472;
const DEVICE = `flannel.${VNI}`;
/** flanneld's second device for a dual-stack cluster's IPv6: flannel-v6.<VNI>, the same VNI and port, over the nodes' IPv6 addresses. */
const DEVICE6 = `flannel-v6.${VNI}`;
/** Outer IPv4 20 + UDP 8 + VXLAN 8 + the inner Ethernet header 14 (flannel's encapOverhead). */
const OVERHEAD = 50;
/** The same over an IPv6 underlay (outer IPv6 40): the kernel's VXLAN6_HEADROOM. */
const OVERHEAD6 = 70;
/** The smallest MTU the kernel lets an IPv4 interface have. */
const MIN_IPV4_MTU = 68;
/** IPv6's minimum link MTU (RFC 8200): below it the kernel drops IPv6 from the interface. */
const MIN_IPV6_MTU = 1280;
const LINK_DEFAULT_MTU = 1500;

/** The MTU of a node's eth0: its network's, or the kernel's default. */
const underlayMtu = (t: Topology, node: Node) => t.networks.find((n) => n.name === node.network)?.mtu ?? LINK_DEFAULT_MTU;

/** A VTEP MAC fixed per node (flanneld picks a random one and publishes it; the lab derives it from the node's address). */
const vtepMac = (node: Node) => macFrom(['0e', 'fa'], node.address);
/** flannel-v6.1's MAC, fixed per node as well (flanneld publishes it apart, BackendV6Data's VtepMAC): 0e:f6 + the node's IPv4 bytes. */
const vtepMac6 = (node: Node) => macFrom(['0e', 'f6'], node.address);

/** One of flanneld's VXLAN devices: flannel.1 over IPv4, or flannel-v6.1 over IPv6. */
interface Flavour {
  device: string;
  /** The VTEP MAC of a node (of the topology, not the family's view). */
  mac: (node: Node) => string;
  /** The device's address: the pod CIDR's network address as a host route (/32, /128: "so that no broadcast routes are created"). */
  hostPrefix: 32 | 128;
  /** ` nodad` for IPv6: the address is usable at once, as every lab IPv6 address. */
  addressFlags: string;
}
const V4: Flavour = { device: DEVICE, mac: vtepMac, hostPrefix: 32, addressFlags: '' };
const V6: Flavour = { device: DEVICE6, mac: vtepMac6, hostPrefix: 128, addressFlags: ' nodad' };

/**
 * One node's device, and per peer the route, neighbour and FDB entry, in one family's view of the
 * topology (its nodes at that family's address and pod CIDR); `macOf` looks the node up in the topology.
 */
function deviceLines(view: Topology, n: Node, f: Flavour, mtu: number, macOf: (name: string) => string): { batch: string[]; fdb: string[] } {
  const batch = [
    `link add ${f.device} address ${macOf(n.name)} mtu ${mtu} type vxlan id ${VNI} local ${n.address} dev ${HOST_IFNAME} dstport ${PORT} nolearning`,
    `addr add ${podNetworkAddress(n)}/${f.hostPrefix} dev ${f.device}${f.addressFlags}`,
    `link set ${f.device} up`,
  ];
  const fdb: string[] = [];
  for (const p of peersOf(view, n)) {
    const gateway = podNetworkAddress(p);
    batch.push(`neigh add ${gateway} lladdr ${macOf(p.name)} dev ${f.device} nud permanent`, `route add ${p.podCIDR} via ${gateway} dev ${f.device} onlink`);
    fdb.push(`fdb add ${macOf(p.name)} dev ${f.device} dst ${p.address} self permanent`);
  }
  return { batch, fdb };
}

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
 * The router sees only UDP between node addresses. A dual-stack cluster gets flanneld's second
 * device, flannel-v6.1, the same over IPv6: VTEPs at the nodes' IPv6 addresses, the pod CIDR6's
 * network address /128 on it, per peer the IPv6 route, neighbour and FDB entry.
 */
export const vxlan: PodNetwork = {
  mode: 'vxlan',
  check(t, at) {
    t.networks.forEach((n, i) => {
      const mtu = n.mtu ?? LINK_DEFAULT_MTU;
      if (t.nodes.some((node) => node.network === n.name) && mtu - OVERHEAD < MIN_IPV4_MTU) {
        at(['networks', i, 'mtu'], `podNetwork mode vxlan: MTU ${mtu} leaves ${mtu - OVERHEAD} for pods after the ${OVERHEAD}-byte VXLAN header (outer IP 20, UDP 8, VXLAN 8, Ethernet 14); IPv4 needs at least ${MIN_IPV4_MTU}, so the MTU must be at least ${MIN_IPV4_MTU + OVERHEAD}`);
      } else if (isDualStack(t) && t.nodes.some((node) => node.network === n.name) && mtu - OVERHEAD < MIN_IPV6_MTU) {
        at(['networks', i, 'mtu'], `podNetwork mode vxlan in a dual-stack cluster: MTU ${mtu} leaves ${mtu - OVERHEAD} for pods after the ${OVERHEAD}-byte VXLAN header; IPv6 needs at least ${MIN_IPV6_MTU}, so the MTU must be at least ${MIN_IPV6_MTU + OVERHEAD}`);
      }
    });
  },
  keepsRouterRoute: (t, route) => !leadsIntoPodRange(t, route),
  plan(t) {
    const plan = emptyPlan(t, 'vxlan');
    const mtu = overlayMtu(t);
    const macOf = (f: Flavour) => (name: string) => f.mac(t.nodes.find((x) => x.name === name)!);
    for (const n of t.nodes) {
      const mine = plan.nodes[n.name]!;
      const v4 = deviceLines(t, n, V4, mtu, macOf(V4));
      mine.batch.push(...v4.batch);
      mine.bridgeBatch.push(...v4.fdb);
      // flanneld turns off router advertisements on its device (the lab's nodes send none either).
      mine.sysctls[`net/ipv6/conf/${DEVICE}/accept_ra`] = '0'; // slashes: the device name holds a dot
    }
    // Dual-stack: flannel-v6.1 beside flannel.1, the same VNI and port, VTEPs at the nodes' IPv6
    // addresses. flanneld asks the same MTU for it as for flannel.1 (the external MTU less 50); the
    // kernel caps an IPv6 VXLAN device at its underlay's less 70 and gives it that (1430 on 1500:
    // measured, and what flanneld's older releases, which asked none, got too). Its lines
    // go before the node's IPv6 routes (batch, not batch6): the kernel refuses an IPv6 `onlink`
    // route whose gateway another device's route already covers ("Nexthop has invalid gateway or
    // device mismatch"), and the lab's node routes the whole fd00:10:244::/56 to the router (a
    // real node has only its default route there, which the kernel's check ignores).
    const v6 = ipv6View(t);
    for (const n of v6?.nodes ?? []) {
      const mine = plan.nodes[n.name]!;
      const lines = deviceLines(v6!, n, V6, Math.min(mtu, underlayMtu(t, n) - OVERHEAD6), macOf(V6));
      mine.batch.push(...lines.batch);
      mine.bridgeBatch.push(...lines.fdb);
      mine.sysctls[`net/ipv6/conf/${DEVICE6}/accept_ra`] = '0';
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
