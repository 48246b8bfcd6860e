import { ipv6View } from '../topology/family.js';
import { HOST_IFNAME, networkBridgeName } from '../topology/names.js';
import type { RouterRoute, Topology } from '../topology/schema.js';
import { cidr6Contains, firstHost6, parseCidr6, type Cidr6 } from '../util/ipv6.js';

/** The part of a namespace's plan this adds to (network.ts's NamespacePlan; said here to keep the modules apart). */
interface NamespacePlan {
  batch: string[];
  sysctls: Record<string, string>;
  addresses: { ifname: string; cidr: string }[];
}

/**
 * The IPv6 half of a dual-stack lab's network (docs/dualstack.md), laid over the IPv4 plan once
 * it is complete (every link is up by then): each host's IPv6 address with `nodad`, so it is
 * usable at once instead of after Duplicate Address Detection's second; IPv6 forwarding on
 * routers and nodes (inside the lab's namespaces only); routes to the lab's IPv6 prefixes through
 * the same gateways as IPv4; the router's IPv6 routes from the topology file that the pod network
 * mode keeps (routed mode's pod-CIDR routes). Neighbour
 * discovery (NDP) replaces ARP on its own: nothing to configure. Pure; nothing for IPv4-only labs.
 */
export function addIPv6(t: Topology, plans: Map<string, NamespacePlan>, keepsRouterRoute: (route: RouterRoute) => boolean = () => true): void {
  const v6 = ipv6View(t);
  if (!v6) return;
  const subnets = new Map(v6.networks.map((n) => [n.name, n.subnet]));
  const prefixes = [...v6.networks.map((n) => n.subnet), v6.cluster.podCIDR, v6.cluster.serviceCIDR];
  const len = (cidr: string) => cidr.split('/')[1]!;
  const address = (plan: NamespacePlan, ifname: string, addr: string, prefix: string) => {
    const cidr = `${addr}/${prefix}`;
    plan.batch.push(`addr add ${cidr} dev ${ifname} nodad`);
    plan.addresses.push({ ifname, cidr });
  };
  /** Routes to every lab IPv6 prefix the host is not attached to, through its gateway (never a default route). */
  const routesVia = (plan: NamespacePlan, connected: string[], gateway: string | undefined) => {
    if (!gateway) return;
    const attached = connected.map(parseCidr6).filter((c): c is Cidr6 => c !== undefined);
    for (const prefix of prefixes) {
      const c = parseCidr6(prefix)!;
      if (!attached.some((a) => a.prefix <= c.prefix && cidr6Contains(a, c.network))) plan.batch.push(`route add ${prefix} via ${gateway}`);
    }
  };
  const gatewayOn = (network: string) => v6.routers.flatMap((r) => r.interfaces).find((i) => i.network === network)?.address;

  for (const r of v6.routers) {
    const plan = plans.get(r.name)!;
    plan.sysctls['net.ipv6.conf.all.forwarding'] = '1';
    // hashPorts: IPv6 ECMP (an IPv6 load balancer IP over the nodes) hashes ports too, as IPv4's does.
    if (r.hashPorts) plan.sysctls['net.ipv6.fib_multipath_hash_policy'] = '1';
    for (const iface of r.interfaces) address(plan, networkBridgeName(iface.network), iface.address, len(subnets.get(iface.network)!));
    // The file's IPv6 pod-CIDR routes are routed mode's own, as for IPv4 (the other modes carry pod traffic themselves).
    for (const route of r.routes.filter(keepsRouterRoute)) {
      const hops = Array.isArray(route.via) ? route.via : [route.via];
      const to = route.to.includes('/') ? route.to : `${route.to}/128`;
      plan.batch.push(hops.length === 1 ? `route add ${to} via ${hops[0]}` : `route add ${to} ${hops.map((h) => `nexthop via ${h}`).join(' ')}`);
    }
  }
  for (const n of v6.nodes) {
    const plan = plans.get(n.name)!;
    plan.sysctls['net.ipv6.conf.all.forwarding'] = '1';
    // As for IPv4: bridged pod-to-pod traffic must pass ip6tables so conntrack can undo a DNAT.
    plan.sysctls['net.bridge.bridge-nf-call-ip6tables'] = '1';
    const subnet = subnets.get(n.network);
    if (subnet) address(plan, HOST_IFNAME, n.address, len(subnet));
    address(plan, n.bridge, firstHost6(parseCidr6(n.podCIDR)!), len(n.podCIDR));
    routesVia(plan, [subnet, n.podCIDR].filter((x): x is string => x !== undefined), subnet && gatewayOn(n.network));
  }
  for (const c of v6.clients) {
    const plan = plans.get(c.name)!;
    const subnet = subnets.get(c.network)!;
    address(plan, HOST_IFNAME, c.address, len(subnet));
    routesVia(plan, [subnet], gatewayOn(c.network));
  }
  for (const pod of v6.pods) {
    const plan = plans.get(pod.name)!;
    const node = v6.nodes.find((n) => n.name === pod.node)!;
    address(plan, HOST_IFNAME, pod.address, len(node.podCIDR));
    routesVia(plan, [node.podCIDR], firstHost6(parseCidr6(node.podCIDR)!));
  }
}
