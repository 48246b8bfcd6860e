import type { Client, Node, Pod, Router, Topology } from '../topology/schema.js';
import { extraIfname, extraRouterPortName, HOST_IFNAME, labMarker, namespaceName, networkBridgeName, podVethName, routerPortName } from '../topology/names.js';
import { cidrContains, cidrsOverlap, parseCidr, parseIPv4, type Cidr } from '../util/ipv4.js';
import { bridgeAddressOf, labPrefixes as prefixesOf, serviceIPRoutes } from '../topology/relations.js';
import { macFrom } from './pod-network/common.js';
import { podNetworkOf, type NamespaceAdditions, type PodNetwork, type PodNetworkPlan } from './pod-network/index.js';
import { loadBalancerOf } from './load-balancer/index.js';
import { addIPv6 } from './network6.js';
import { ipv4Routes } from '../topology/family.js';

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

/** What the steps of planNetwork share: the topology, lookups into it, and the plan so far. */
interface Planning {
  t: Topology;
  subnets: Map<string, string>;
  mtus: Map<string, number | undefined>;
  labPrefixes: string[];
  podNet: PodNetworkPlan;
  /** Each host's namespace, in the order they are created. */
  plans: Map<string, NamespacePlan>;
  createBatch: string[];
  /** Router-side veth ends made so far, for their interface indexes. */
  routerPorts: number;
}

/**
 * Pure: topology → namespaces, links, addresses, routes and sysctls.
 * Nothing here touches the kernel; apply/ runs the result.
 */
export function planNetwork(t: Topology): NetworkPlan {
  const podNetwork = podNetworkOf(t);
  const p: Planning = {
    t,
    subnets: new Map(t.networks.map((n) => [n.name, n.subnet])),
    mtus: new Map(t.networks.map((n) => [n.name, n.mtu])),
    labPrefixes: prefixesOf(t),
    // The load balancer mode adds its speakers to the pod network's (one BIRD per host carries both).
    podNet: loadBalancerOf(t).extend(t, podNetwork.plan(t)),
    plans: new Map(),
    createBatch: [],
    routerPorts: 0,
  };
  // Routers first: they hold each network's bridge, which hosts plug into.
  for (const r of t.routers) planRouterBridges(p, r);
  for (const n of t.nodes) planNode(p, n);
  for (const c of t.clients) planClient(p, c);
  const podParts: Record<string, PodPart> = {};
  for (const pod of t.pods) podParts[pod.name] = planPod(p, pod);
  // Router bridges come up last, then the routes whose next hops they make reachable.
  for (const r of t.routers) planRouterRoutes(p, r, podNetwork);
  // Dual-stack: the IPv6 addresses and routes, once every link is up (nothing for IPv4-only labs).
  addIPv6(t, p.plans, (route) => podNetwork.keepsRouterRoute(t, route));
  // Then the pod network mode's IPv6 lines (flannel's IPv6 routes and device), which need those addresses.
  for (const [host, more] of [...Object.entries(p.podNet.nodes), ...Object.entries(p.podNet.routers)]) p.plans.get(host)?.batch.push(...more.batch6);
  return { namespaces: [...p.plans.values()], createBatch: p.createBatch, labPrefixes: p.labPrefixes, podParts, podNetwork: p.podNet };
}

/** " mtu N" for a link, or nothing when it keeps the kernel's default. */
const mtuOf = (mtu: number | undefined) => (mtu === undefined ? '' : ` mtu ${mtu}`);

function addNamespace(p: Planning, host: string, role: Role): NamespacePlan {
  const plan: NamespacePlan = {
    ns: namespaceName(p.t.lab, host),
    host,
    role,
    batch: [`link set lo alias ${labMarker(p.t.lab)}`, 'link set lo up'],
    bridgeBatch: [],
    sysctls: {},
    addresses: [],
  };
  p.plans.set(host, plan);
  p.createBatch.push(`netns add ${plan.ns}`);
  return plan;
}

function addAddress(plan: NamespacePlan, ifname: string, cidr: string): void {
  plan.batch.push(`addr add ${cidr} dev ${ifname}`);
  plan.addresses.push({ ifname, cidr });
}

/** Routes to every lab prefix this host is not attached to, through its gateway; never a default route. */
function routesVia(p: Planning, plan: NamespacePlan, connected: string[], gateway: string | undefined): void {
  if (!gateway) return;
  const attached = connected.map((c) => parseCidr(c)).filter((c): c is Cidr => c !== undefined);
  for (const prefix of p.labPrefixes) {
    const cidr = parseCidr(prefix)!;
    const covered = attached.some((a) => a.prefix <= cidr.prefix && cidrsOverlap(a, cidr));
    if (!covered) plan.batch.push(`route add ${prefix} via ${gateway}`);
  }
}

/** The pod network mode's lines, after the namespace's own. */
function extend(plan: NamespacePlan, more: NamespaceAdditions | undefined): void {
  if (!more) return;
  plan.batch.push(...more.batch);
  plan.bridgeBatch.push(...more.bridgeBatch);
  Object.assign(plan.sysctls, more.sysctls);
}

const gatewayOn = (t: Topology, network: string): string | undefined =>
  t.routers.flatMap((r) => r.interfaces).find((iface) => iface.network === network)?.address;

/** A router's namespace and one bridge per network it is on, left down until every host has plugged in. */
function planRouterBridges(p: Planning, r: Router): void {
  const plan = addNamespace(p, r.name, 'router');
  plan.sysctls['net.ipv4.ip_forward'] = '1';
  // Hosts on a subnet reach each other's pod ranges through the router on that same
  // subnet; an ICMP redirect would teach them to bypass it, which is not the documented path.
  plan.sysctls['net.ipv4.conf.all.send_redirects'] = '0';
  if (r.hashPorts) plan.sysctls['net.ipv4.fib_multipath_hash_policy'] = '1';
  for (const iface of r.interfaces) {
    const bridge = networkBridgeName(iface.network);
    plan.batch.push(`link add ${bridge} address ${bridgeMac(iface.address)}${mtuOf(p.mtus.get(iface.network))} type bridge`);
    addAddress(plan, bridge, `${iface.address}/${prefixOf(p.subnets.get(iface.network)!)}`);
    plan.sysctls[`net.ipv4.conf.${bridge}.send_redirects`] = '0';
  }
}

/** A veth from the host's eth0 (or a multi-homed node's k-th more interface) to a port on the bridge of the router on that network. */
function plugIntoNetwork(p: Planning, host: string, network: string, k = 0): void {
  const router = p.t.routers.find((r) => r.interfaces.some((i) => i.network === network))!;
  const port = k === 0 ? routerPortName(host) : extraRouterPortName(host, k);
  const ifname = k === 0 ? HOST_IFNAME : extraIfname(k);
  p.createBatch.push(
    `link add name ${ifname} index ${HOST_IFINDEX + k} netns ${namespaceName(p.t.lab, host)} type veth peer name ${port} index ${ROUTER_PORT_BASE + p.routerPorts++} netns ${namespaceName(p.t.lab, router.name)}`,
  );
  const rp = p.plans.get(router.name)!;
  rp.batch.push(`link set ${port} master ${networkBridgeName(network)}`, `link set ${port}${mtuOf(p.mtus.get(network))} up`);
}

function planNode(p: Planning, n: Node): void {
  const plan = addNamespace(p, n.name, 'node');
  plan.sysctls['net.ipv4.ip_forward'] = '1';
  // Pod-to-pod traffic on one bridge must pass iptables so conntrack can undo a DNAT.
  plan.sysctls['net.bridge.bridge-nf-call-iptables'] = '1';
  plugIntoNetwork(p, n.name, n.network);
  const subnet = p.subnets.get(n.network)!;
  addAddress(plan, HOST_IFNAME, `${n.address}/${prefixOf(subnet)}`);
  for (const extra of n.extraAddresses ?? []) addAddress(plan, HOST_IFNAME, `${extra}/${prefixOf(subnet)}`);
  plan.batch.push(`link set ${HOST_IFNAME}${mtuOf(p.mtus.get(n.network))} up`);
  // A multi-homed node: its more networks are connected routes out of eth1, eth2 (no gateway route to them).
  const more = (n.interfaces ?? []).map((iface, j) => {
    const k = j + 1;
    plugIntoNetwork(p, n.name, iface.network, k);
    const sub = p.subnets.get(iface.network)!;
    addAddress(plan, extraIfname(k), `${iface.address}/${prefixOf(sub)}`);
    plan.batch.push(`link set ${extraIfname(k)}${mtuOf(p.mtus.get(iface.network))} up`);
    return sub;
  });
  const gateway = bridgeAddressOf(n);
  plan.batch.push(`link add ${n.bridge} address ${bridgeMac(gateway)}${mtuOf(p.podNet.podMtu)} type bridge`);
  addAddress(plan, n.bridge, `${gateway}/${prefixOf(n.podCIDR)}`);
  plan.batch.push(`link set ${n.bridge} up`);
  routesVia(p, plan, [subnet, n.podCIDR, ...more], gatewayOn(p.t, n.network));
  extend(plan, p.podNet.nodes[n.name]);
}

function planClient(p: Planning, c: Client): void {
  const plan = addNamespace(p, c.name, 'client');
  plugIntoNetwork(p, c.name, c.network);
  const subnet = p.subnets.get(c.network)!;
  addAddress(plan, HOST_IFNAME, `${c.address}/${prefixOf(subnet)}`);
  for (const extra of c.extraAddresses ?? []) addAddress(plan, HOST_IFNAME, `${extra}/${prefixOf(subnet)}`);
  plan.batch.push(`link set ${HOST_IFNAME}${mtuOf(p.mtus.get(c.network))} up`);
  routesVia(p, plan, [subnet], gatewayOn(p.t, c.network));
}

/** A pod's namespace and its veth into its node's bridge; returns its share, for adding it to a running lab. */
function planPod(p: Planning, pod: Pod): PodPart {
  const node = p.t.nodes.find((n) => n.name === pod.node)!;
  const createdBefore = p.createBatch.length;
  const plan = addNamespace(p, pod.name, 'pod');
  const veth = podVethName(pod.name);
  p.createBatch.push(
    `link add name ${HOST_IFNAME} index ${HOST_IFINDEX} netns ${plan.ns} type veth peer name ${veth} index ${podPortIndex(pod.address)} netns ${namespaceName(p.t.lab, node.name)}`,
  );
  // hairpin: a pod whose service traffic is balanced back to itself leaves and re-enters one port.
  const nodeBatch = [`link set ${veth} master ${node.bridge}`, `link set ${veth} type bridge_slave hairpin on`, `link set ${veth}${mtuOf(p.podNet.podMtu)} up`];
  p.plans.get(node.name)!.batch.push(...nodeBatch);
  addAddress(plan, HOST_IFNAME, `${pod.address}/${prefixOf(node.podCIDR)}`);
  plan.batch.push(`link set ${HOST_IFNAME}${mtuOf(p.podNet.podMtu)} up`);
  routesVia(p, plan, [node.podCIDR], bridgeAddressOf(node));
  return { node: node.name, create: p.createBatch.slice(createdBefore), nodeBatch };
}

/** A router's bridges up, then its static routes (those the pod network mode keeps) and the mode's own lines. */
function planRouterRoutes(p: Planning, r: Router, podNetwork: PodNetwork): void {
  const plan = p.plans.get(r.name)!;
  for (const iface of r.interfaces) plan.batch.push(`link set ${networkBridgeName(iface.network)} up`);
  for (const route of ipv4Routes(r.routes).filter((x) => podNetwork.keepsRouterRoute(p.t, x) && loadBalancerOf(p.t).keepsRouterRoute(p.t, x))) {
    const to = route.to.includes('/') ? route.to : `${route.to}/32`;
    const hops = Array.isArray(route.via) ? route.via : [route.via];
    plan.batch.push(routeLine(to, hops));
  }
  // Service IPs outside the lab's ranges that no route of the file covers: toward every node (ECMP).
  for (const route of serviceIPRoutes(p.t, (ip) => !loadBalancerOf(p.t).keepsRouterRoute(p.t, { to: ip, via: [] })).filter((x) => x.router === r.name)) {
    plan.batch.push(routeLine(route.to, route.via));
  }
  extend(plan, p.podNet.routers[r.name]);
}

/** An `ip -batch` route over one next hop, or several (ECMP). */
const routeLine = (to: string, hops: string[]) => (hops.length === 1 ? `route add ${to} via ${hops[0]}` : `route add ${to} ${hops.map((h) => `nexthop via ${h}`).join(' ')}`);
