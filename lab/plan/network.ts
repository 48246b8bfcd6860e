import type { Topology } from '../topology/schema.js';
import { HOST_IFNAME, labMarker, namespaceName, networkBridgeName, podVethName, routerPortName } from '../topology/names.js';
import { cidrContains, cidrsOverlap, firstHost, parseCidr, parseIPv4, type Cidr } from '../util/ipv4.js';
import { labPrefixes as prefixesOf } from '../topology/relations.js';
import { macFrom } from './pod-network/common.js';
import { podNetworkOf, type NamespaceAdditions, type PodNetworkPlan } from './pod-network/index.js';

export type Role = 'router' | 'node' | 'client' | 'pod';

export interface NamespacePlan {
  /** The kernel's name for it: <lab>-<host>. */
  ns: string;
  host: string;
  role: Role;
  /** ip -batch lines run inside this namespace (ip -n NS -batch -). */
  batch: string[];
  /** bridge -batch lines run after them (FDB entries of the pod network, which `ip` cannot write). */
  bridgeBatch: string[];
  /** sysctls set inside this namespace only. */
  sysctls: Record<string, string>;
  /** Addresses this namespace holds, for status output. */
  addresses: { ifname: string; cidr: string }[];
}

export interface NetworkPlan {
  namespaces: NamespacePlan[];
  /** Lines for one host-level ip -batch: namespaces and veth pairs, created directly inside lab namespaces. */
  createBatch: string[];
  /** Every prefix that belongs to the lab; no namespace gets a route outside these. */
  labPrefixes: string[];
  /** Each pod's share of createBatch and of its node's batch, so pods can be added to a running lab. */
  podParts: Record<string, PodPart>;
  /** What the topology's pod network mode added (lab/plan/pod-network/), kept for verify, trace and the pictures. */
  podNetwork: PodNetworkPlan;
}

/** What one pod adds: its veth pair (host batch) and the node-side port lines on the bridge. */
export interface PodPart {
  node: string;
  create: string[];
  nodeBatch: string[];
}

/**
 * Interface indexes, chosen so that no veth shares its index with its peer. The kernel treats a
 * carrier change on a device whose index equals its link's index as non-urgent and applies it up
 * to a second later (linkwatch); until then the veth drops what it is given. Distinct indexes
 * make the change urgent, so a link carries traffic as soon as both ends are up.
 */
const HOST_IFINDEX = 100;
const ROUTER_PORT_BASE = 1000;
/** A pod's port on its node's bridge: unique on the node, since pod addresses are. */
const podPortIndex = (address: string) => 0x1000000 + (parseIPv4(address)! & 0xffffff);

/**
 * A fixed MAC for a bridge, from its IPv4 address (02:00 + the four bytes: locally administered).
 * A bridge without one takes the lowest MAC among its ports and changes it as pods come and go;
 * pods that cached the old one in ARP then send to a MAC nobody owns until they re-resolve.
 */
export const bridgeMac = (address: string) => macFrom(['02', '00'], address);

const prefixOf = (cidr: string) => cidr.split('/')[1]!;

/**
 * Pure: topology → namespaces, links, addresses, routes and sysctls.
 * Nothing here touches the kernel; apply/ runs the result.
 */
export function planNetwork(t: Topology): NetworkPlan {
  const ns = (host: string) => namespaceName(t.lab, host);
  const subnets = new Map(t.networks.map((n) => [n.name, n.subnet]));
  const labPrefixes = prefixesOf(t);
  const mtus = new Map(t.networks.map((n) => [n.name, n.mtu]));
  const podNetwork = podNetworkOf(t);
  const podNet = podNetwork.plan(t);
  /** " mtu N" for a link, or nothing when it keeps the kernel's default. */
  const mtuOf = (mtu: number | undefined) => (mtu === undefined ? '' : ` mtu ${mtu}`);
  const plans = new Map<string, NamespacePlan>();
  const createBatch: string[] = [];

  const add = (host: string, role: Role): NamespacePlan => {
    const plan: NamespacePlan = {
      ns: ns(host),
      host,
      role,
      batch: [`link set lo alias ${labMarker(t.lab)}`, 'link set lo up'],
      bridgeBatch: [],
      sysctls: {},
      addresses: [],
    };
    plans.set(host, plan);
    createBatch.push(`netns add ${plan.ns}`);
    return plan;
  };
  const address = (plan: NamespacePlan, ifname: string, cidr: string) => {
    plan.batch.push(`addr add ${cidr} dev ${ifname}`);
    plan.addresses.push({ ifname, cidr });
  };
  /** Routes to every lab prefix this host is not attached to, through its gateway; never a default route. */
  const routesVia = (plan: NamespacePlan, connected: string[], gateway: string | undefined) => {
    if (!gateway) return;
    const attached = connected.map((c) => parseCidr(c)).filter((c): c is Cidr => c !== undefined);
    for (const prefix of labPrefixes) {
      const p = parseCidr(prefix)!;
      const covered = attached.some((a) => a.prefix <= p.prefix && cidrsOverlap(a, p));
      if (!covered) plan.batch.push(`route add ${prefix} via ${gateway}`);
    }
  };
  /** The pod network mode's lines, after the namespace's own. */
  const extend = (plan: NamespacePlan, more: NamespaceAdditions | undefined) => {
    if (!more) return;
    plan.batch.push(...more.batch);
    plan.bridgeBatch.push(...more.bridgeBatch);
    Object.assign(plan.sysctls, more.sysctls);
  };
  const gatewayOn = (network: string): string | undefined =>
    t.routers.flatMap((r) => r.interfaces).find((iface) => iface.network === network)?.address;

  // Routers first: they hold each network's bridge, which hosts plug into.
  for (const r of t.routers) {
    const plan = add(r.name, 'router');
    plan.sysctls['net.ipv4.ip_forward'] = '1';
    // Hosts on a subnet reach each other's pod ranges through the router on that same
    // subnet; an ICMP redirect would teach them to bypass it, which is not the documented path.
    plan.sysctls['net.ipv4.conf.all.send_redirects'] = '0';
    if (r.hashPorts) plan.sysctls['net.ipv4.fib_multipath_hash_policy'] = '1';
    for (const iface of r.interfaces) {
      const bridge = networkBridgeName(iface.network);
      plan.batch.push(`link add ${bridge} address ${bridgeMac(iface.address)}${mtuOf(mtus.get(iface.network))} type bridge`);
      address(plan, bridge, `${iface.address}/${prefixOf(subnets.get(iface.network)!)}`);
      plan.sysctls[`net.ipv4.conf.${bridge}.send_redirects`] = '0';
    }
  }

  let routerPorts = 0;
  const plugIntoNetwork = (host: string, network: string) => {
    const router = t.routers.find((r) => r.interfaces.some((i) => i.network === network))!;
    const port = routerPortName(host);
    createBatch.push(`link add name ${HOST_IFNAME} index ${HOST_IFINDEX} netns ${ns(host)} type veth peer name ${port} index ${ROUTER_PORT_BASE + routerPorts++} netns ${ns(router.name)}`);
    const rp = plans.get(router.name)!;
    rp.batch.push(`link set ${port} master ${networkBridgeName(network)}`, `link set ${port}${mtuOf(mtus.get(network))} up`);
  };

  for (const n of t.nodes) {
    const plan = add(n.name, 'node');
    plan.sysctls['net.ipv4.ip_forward'] = '1';
    // Pod-to-pod traffic on one bridge must pass iptables so conntrack can undo a DNAT.
    plan.sysctls['net.bridge.bridge-nf-call-iptables'] = '1';
    plugIntoNetwork(n.name, n.network);
    const subnet = subnets.get(n.network)!;
    address(plan, HOST_IFNAME, `${n.address}/${prefixOf(subnet)}`);
    plan.batch.push(`link set ${HOST_IFNAME}${mtuOf(mtus.get(n.network))} up`);
    plan.batch.push(`link add ${n.bridge} address ${bridgeMac(firstHost(parseCidr(n.podCIDR)!))}${mtuOf(podNet.podMtu)} type bridge`);
    address(plan, n.bridge, `${firstHost(parseCidr(n.podCIDR)!)}/${prefixOf(n.podCIDR)}`);
    plan.batch.push(`link set ${n.bridge} up`);
    routesVia(plan, [subnet, n.podCIDR], gatewayOn(n.network));
    extend(plan, podNet.nodes[n.name]);
  }

  for (const c of t.clients) {
    const plan = add(c.name, 'client');
    plugIntoNetwork(c.name, c.network);
    const subnet = subnets.get(c.network)!;
    address(plan, HOST_IFNAME, `${c.address}/${prefixOf(subnet)}`);
    plan.batch.push(`link set ${HOST_IFNAME}${mtuOf(mtus.get(c.network))} up`);
    routesVia(plan, [subnet], gatewayOn(c.network));
  }

  const podParts: Record<string, PodPart> = {};
  for (const p of t.pods) {
    const node = t.nodes.find((n) => n.name === p.node)!;
    const createdBefore = createBatch.length;
    const plan = add(p.name, 'pod');
    const veth = podVethName(p.name);
    createBatch.push(`link add name ${HOST_IFNAME} index ${HOST_IFINDEX} netns ${ns(p.name)} type veth peer name ${veth} index ${podPortIndex(p.address)} netns ${ns(node.name)}`);
    const np = plans.get(node.name)!;
    // hairpin: a pod whose service traffic is balanced back to itself leaves and re-enters one port.
    const nodeBatch = [`link set ${veth} master ${node.bridge}`, `link set ${veth} type bridge_slave hairpin on`, `link set ${veth}${mtuOf(podNet.podMtu)} up`];
    np.batch.push(...nodeBatch);
    podParts[p.name] = { node: node.name, create: createBatch.slice(createdBefore), nodeBatch };
    address(plan, HOST_IFNAME, `${p.address}/${prefixOf(node.podCIDR)}`);
    plan.batch.push(`link set ${HOST_IFNAME}${mtuOf(podNet.podMtu)} up`);
    routesVia(plan, [node.podCIDR], firstHost(parseCidr(node.podCIDR)!));
  }

  // Router bridges come up last, then the routes whose next hops they make reachable.
  for (const r of t.routers) {
    const plan = plans.get(r.name)!;
    for (const iface of r.interfaces) plan.batch.push(`link set ${networkBridgeName(iface.network)} up`);
    for (const route of r.routes.filter((x) => podNetwork.keepsRouterRoute(t, x))) {
      const to = route.to.includes('/') ? route.to : `${route.to}/32`;
      const hops = Array.isArray(route.via) ? route.via : [route.via];
      plan.batch.push(hops.length === 1 ? `route add ${to} via ${hops[0]}` : `route add ${to} ${hops.map((h) => `nexthop via ${h}`).join(' ')}`);
    }
    extend(plan, podNet.routers[r.name]);
  }

  return { namespaces: [...plans.values()], createBatch, labPrefixes, podParts, podNetwork: podNet };
}

