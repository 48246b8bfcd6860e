import type { Service, Topology } from './schema.js';

/**
 * Dual-stack (docs/dualstack.md). The lab's clusters are IPv4-primary: every address field is
 * IPv4, and the IPv6 half sits beside it in the *6 fields (address6, podCIDR6, subnet6,
 * serviceCIDR6, clusterIPs[1]). kube-proxy runs one proxier per family over the same Services
 * and EndpointSlices; the lab does the same by projecting the topology onto IPv6 (ipv6View) and
 * running the very same rule writers on it, which then write ip6tables / `table ip6` rules.
 */
export type IPFamily = 'IPv4' | 'IPv6';

/** The family a topology's (or a view's) addresses are in. */
export const familyOf = (t: Pick<Topology, 'cluster'>): IPFamily => (t.cluster.serviceCIDR.includes(':') ? 'IPv6' : 'IPv4');

/** A cluster is dual-stack when it has IPv6 pod and service ranges (checks/families.ts demands both). */
export const isDualStack = (t: Pick<Topology, 'cluster'>) => t.cluster.serviceCIDR6 !== undefined && t.cluster.podCIDR6 !== undefined;

/**
 * A Service's IP families as the API server settles them (spec.ipFamilyPolicy, spec.ipFamilies),
 * or why it refuses the Service. Unset policy is SingleStack; PreferDualStack gets both families
 * on a dual-stack cluster, one otherwise; RequireDualStack needs a dual-stack cluster.
 */
export function serviceFamilies(s: Pick<Service, 'ipFamilies' | 'ipFamilyPolicy'>, dual: boolean): IPFamily[] | string {
  const policy = s.ipFamilyPolicy ?? 'SingleStack';
  const asked = s.ipFamilies;
  if (asked) {
    if (asked.length === 2 && asked[0] === asked[1]) return `ipFamilies: ${asked[0]} is listed twice`;
    if (asked[0] === 'IPv6') return "ipFamilies: the lab's clusters are IPv4-primary (clusterIP is IPv4), so IPv4 comes first; an IPv6-first or IPv6-only Service is not modelled (docs/dualstack.md)";
    if (asked.includes('IPv6') && !dual) return 'ipFamilies: IPv6 is not configured on this cluster (it has no cluster.serviceCIDR6)';
    if (asked.length === 2 && policy === 'SingleStack') return 'ipFamilies: two IP families need ipFamilyPolicy PreferDualStack or RequireDualStack, not SingleStack';
  }
  if (policy === 'RequireDualStack' && !dual) return 'ipFamilyPolicy: RequireDualStack, but this cluster is not configured for dual-stack Services (it has no cluster.podCIDR6 and cluster.serviceCIDR6)';
  if (policy === 'SingleStack') return asked ?? ['IPv4'];
  return dual ? ['IPv4', 'IPv6'] : ['IPv4'];
}

/** The Service's families in a checked topology (the check refused any it could not settle). */
export function familiesOf(t: Topology, s: Service): IPFamily[] {
  const fam = serviceFamilies(s, isDualStack(t));
  return typeof fam === 'string' ? ['IPv4'] : fam;
}

const views = new WeakMap<Topology, Topology>();

/**
 * The topology as its IPv6 proxier and IPv6 network see it: each host's IPv6 address in place of
 * its IPv4 one, the IPv6 pod and service ranges, only the hosts and networks that have IPv6, only
 * the Services with IPv6 among their families, with their IPv6 ClusterIP, external IPs, load
 * balancer IPs and source ranges (the *6 fields; docs/dualstack.md). Undefined for an IPv4-only cluster. The same
 * object for the same topology, so per-topology caches (servicePorts) hold.
 */
export function ipv6View(t: Topology): Topology | undefined {
  if (!isDualStack(t)) return undefined;
  let v = views.get(t);
  if (v) return v;
  const six = <T extends { address6?: string }>(xs: T[]) => xs.filter((x) => x.address6 !== undefined).map((x) => ({ ...x, address: x.address6! }));
  v = {
    ...t,
    cluster: { ...t.cluster, podCIDR: t.cluster.podCIDR6!, serviceCIDR: t.cluster.serviceCIDR6!, dns: undefined },
    networks: t.networks.filter((n) => n.subnet6 !== undefined).map((n) => ({ ...n, subnet: n.subnet6! })),
    routers: t.routers.map((r) => ({
      ...r,
      interfaces: six(r.interfaces),
      routes: r.routes.filter((route) => route.to.includes(':')),
    })),
    nodes: t.nodes.map((n) => ({ ...n, address: n.address6!, podCIDR: n.podCIDR6! })),
    clients: six(t.clients),
    pods: six(t.pods),
    services: t.services
      .filter((s) => familiesOf(t, s).includes('IPv6'))
      // kube-proxy splits these lists by family (MapIPsByIPFamily): the IPv6 proxier gets the IPv6 ones.
      .map((s) => ({ ...s, clusterIP: s.clusterIPs![1]!, externalIPs: s.externalIPs6 ?? [], loadBalancerIPs: s.loadBalancerIPs6 ?? [], loadBalancerSourceRanges: s.loadBalancerSourceRanges6 ?? [] })),
  };
  views.set(t, v);
  return v;
}

/** Only the routes of one family (the IPv4 network plan must not see IPv6 routes). */
export const ipv4Routes = <R extends { to: string }>(routes: R[]) => routes.filter((r) => !r.to.includes(':'));
