import { cidr6Contains, cidrs6Overlap, firstHost6, parseCidr6, parseIPv6, parseIPv6Loose, formatIPv6, unusableRange6, type Cidr6 } from '../../util/ipv6.js';
import { isDualStack, serviceFamilies } from '../family.js';
import type { CheckContext } from './context.js';

/**
 * Dual-stack (docs/dualstack.md): the IPv6 half of a topology. A cluster is dual-stack when it
 * has cluster.podCIDR6 and cluster.serviceCIDR6; then every node has an IPv6 address and pod
 * range and every pod an IPv6 address, as the kubelet and the CNI give them. IPv6 addresses lie
 * inside their family's range and are owned once; Services ask only for families the cluster has.
 * A topology without any of these fields is IPv4-only and this check says nothing.
 */
export function checkFamilies(c: CheckContext): void {
  const { t } = c;
  const cidr = (path: PropertyKey[], text: string | undefined): Cidr6 | undefined => {
    if (text === undefined) return undefined;
    const parsed = parseCidr6(text);
    if (!parsed) {
      c.at(path, `${text} is not a valid IPv6 network in RFC 5952 form (host bits set, or not written as the kernel prints it${canonical(text.split('/')[0]!, `/${text.split('/')[1] ?? ''}`)})`);
      return undefined;
    }
    const why = unusableRange6(parsed);
    if (why) c.at(path, why);
    return parsed;
  };
  const ip = (path: PropertyKey[], text: string) => ipAt(c, path, text);

  const podRange = cidr(['cluster', 'podCIDR6'], t.cluster.podCIDR6);
  const serviceRange = cidr(['cluster', 'serviceCIDR6'], t.cluster.serviceCIDR6);
  const dual = t.cluster.podCIDR6 !== undefined || t.cluster.serviceCIDR6 !== undefined;
  if (dual && t.cluster.podCIDR6 === undefined) c.at(['cluster', 'serviceCIDR6'], 'a dual-stack cluster needs cluster.podCIDR6 too');
  if (dual && t.cluster.serviceCIDR6 === undefined) c.at(['cluster', 'podCIDR6'], 'a dual-stack cluster needs cluster.serviceCIDR6 too');
  if (podRange && serviceRange && cidrs6Overlap(podRange, serviceRange)) c.at(['cluster', 'serviceCIDR6'], `${serviceRange.text} overlaps cluster.podCIDR6 ${podRange.text}`);
  if (serviceRange && serviceRange.prefix < 108) c.at(['cluster', 'serviceCIDR6'], `${serviceRange.text} is larger than the API server allows for a service range (at most /108 for IPv6; /112 is usual)`);

  const subnets = new Map<string, Cidr6 | undefined>();
  t.networks.forEach((n, i) => {
    const s = cidr(['networks', i, 'subnet6'], n.subnet6);
    subnets.set(n.name, s);
    if (!s) return;
    for (const [other, o] of subnets) if (other !== n.name && o && cidrs6Overlap(s, o)) c.at(['networks', i, 'subnet6'], `${s.text} overlaps network "${other}"`);
    if (podRange && cidrs6Overlap(s, podRange)) c.at(['networks', i, 'subnet6'], `${s.text} overlaps cluster.podCIDR6`);
    if (serviceRange && cidrs6Overlap(s, serviceRange)) c.at(['networks', i, 'subnet6'], `${s.text} overlaps cluster.serviceCIDR6`);
  });
  if (!dual) {
    // IPv6 on hosts needs a dual-stack cluster: kube-proxy would not program that family at all.
    const stray = t.nodes.findIndex((n) => n.address6 !== undefined || n.podCIDR6 !== undefined);
    if (stray >= 0) c.at(['nodes', stray, t.nodes[stray]!.address6 !== undefined ? 'address6' : 'podCIDR6'], 'IPv6 on a node needs a dual-stack cluster: set cluster.podCIDR6 and cluster.serviceCIDR6');
  }

  const onNetwork = (path: PropertyKey[], network: string, text: string | undefined, required: string | undefined) => {
    if (text === undefined) {
      if (required) c.at([...path, 'address'], required);
      return;
    }
    const a = ip([...path, 'address6'], text);
    if (a === undefined || !subnets.has(network)) return;
    const s = subnets.get(network);
    if (!s) c.at([...path, 'address6'], `${text}: network "${network}" has no subnet6, so no IPv6 address can be on it`);
    else if (!cidr6Contains(s, a)) c.at([...path, 'address6'], `${text} is not inside network "${network}"'s subnet6 (${s.text})`);
    else if (a === s.network) c.at([...path, 'address6'], `${text} is the subnet-router anycast address of ${s.text}`);
    c.claimAddress([...path, 'address6'], text);
  };

  t.routers.forEach((r, i) => r.interfaces.forEach((iface, j) => onNetwork(['routers', i, 'interfaces', j], iface.network, iface.address6, undefined)));
  const pod6 = new Map<string, Cidr6>();
  t.nodes.forEach((n, i) => {
    onNetwork(['nodes', i], n.network, n.address6, dual ? `node "${n.name}" needs address6 in a dual-stack cluster (its IPv6 InternalIP)` : undefined);
    if (dual && n.podCIDR6 === undefined) c.at(['nodes', i, 'podCIDR'], `node "${n.name}" needs podCIDR6 in a dual-stack cluster (spec.podCIDRs has one range per family)`);
    const pc = cidr(['nodes', i, 'podCIDR6'], n.podCIDR6);
    if (!pc) return;
    if (podRange && !(cidr6Contains(podRange, pc.network) && pc.prefix >= podRange.prefix)) c.at(['nodes', i, 'podCIDR6'], `${pc.text} is not inside cluster.podCIDR6 ${podRange.text}`);
    for (const [other, o] of pod6) if (cidrs6Overlap(pc, o)) c.at(['nodes', i, 'podCIDR6'], `${pc.text} overlaps the podCIDR6 of node "${other}"`);
    pod6.set(n.name, pc);
    c.claimAddress(['nodes', i, 'podCIDR6'], firstHost6(pc));
  });
  t.clients.forEach((cl, i) => onNetwork(['clients', i], cl.network, cl.address6, undefined));
  t.pods.forEach((p, i) => {
    if (p.address6 === undefined) {
      if (dual) c.at(['pods', i, 'address'], `pod "${p.name}" needs address6 in a dual-stack cluster (the CNI gives every pod one address per family)`);
      return;
    }
    const a = ip(['pods', i, 'address6'], p.address6);
    const pc = pod6.get(p.node);
    if (a === undefined) return;
    if (!pc) {
      if (t.nodes.some((n) => n.name === p.node)) c.at(['pods', i, 'address6'], `node "${p.node}" has no podCIDR6, so its pods have no IPv6 range`);
      return;
    }
    if (!cidr6Contains(pc, a)) c.at(['pods', i, 'address6'], `${p.address6} is not inside the podCIDR6 of node "${p.node}" (${pc.text})`);
    else if (a === pc.network) c.at(['pods', i, 'address6'], `${p.address6} is the subnet-router anycast address of ${pc.text}`);
    else if (p.address6 === firstHost6(pc)) c.at(['pods', i, 'address6'], `${p.address6} belongs to ${p.node}'s bridge`);
    else c.claimAddress(['pods', i, 'address6'], p.address6);
  });

  checkServiceFamilies(c, serviceRange, dual);
  checkServiceIPv6Entries(c, [...subnets.values()].filter((x): x is Cidr6 => x !== undefined));
}

/**
 * A dual-stack Service's IPv6 external IPs, load balancer IPs and source ranges (the *6 fields:
 * upstream's lists hold both families and kube-proxy splits them; the lab's IPv4 fields stay IPv4).
 * Refused where the family does not match (the Service has no IPv6 family), where the type does
 * not have them, an address outside the lab's IPv6 networks, or a load balancer mode that would
 * announce them (MetalLB's IPv6 is not built).
 */
function checkServiceIPv6Entries(c: CheckContext, subnets6: Cidr6[]): void {
  const { t } = c;
  t.services.forEach((s, i) => {
    const fields = [['externalIPs6', s.externalIPs6], ['loadBalancerIPs6', s.loadBalancerIPs6], ['loadBalancerSourceRanges6', s.loadBalancerSourceRanges6]] as const;
    const given = fields.filter(([, v]) => v !== undefined && v.length > 0);
    if (given.length === 0) return;
    const fam = serviceFamilies(s, isDualStack(t));
    if (typeof fam === 'string') return; // said by checkServiceFamilies
    if (!fam.includes('IPv6')) {
      for (const [f] of given) c.at(['services', i, f], `the Service's IP families are ${fam.join(', ')}: IPv6 entries need IPv6 among them (ipFamilyPolicy PreferDualStack or RequireDualStack on a dual-stack cluster)`);
      return;
    }
    const inNetwork = (a: bigint) => subnets6.some((n) => cidr6Contains(n, a));
    (s.externalIPs6 ?? []).forEach((ext, j) => {
      const a = ipAt(c, ['services', i, 'externalIPs6', j], ext);
      if (a !== undefined && !inNetwork(a)) c.at(['services', i, 'externalIPs6', j], `${ext} lies outside the lab's IPv6 networks (subnet6); pick one the router can send to a node`);
    });
    if (s.type !== 'LoadBalancer') {
      for (const f of ['loadBalancerIPs6', 'loadBalancerSourceRanges6'] as const) if (s[f]?.length) c.at(['services', i, f], `only a service of type LoadBalancer has ${f === 'loadBalancerIPs6' ? 'load balancer IPs' : 'source ranges'} (this one is ${s.type})`);
      return;
    }
    if (s.loadBalancerIPs6?.length && t.loadBalancer.mode !== 'static') c.at(['services', i, 'loadBalancerIPs6'], `loadBalancer.mode ${t.loadBalancer.mode}: MetalLB's IPv6 announcements are not built in the lab; use mode static (a router route to the nodes)`);
    (s.loadBalancerIPs6 ?? []).forEach((lb, j) => {
      const a = ipAt(c, ['services', i, 'loadBalancerIPs6', j], lb);
      if (a === undefined) return;
      c.claimAddress(['services', i, 'loadBalancerIPs6', j], lb);
      if (!inNetwork(a)) c.at(['services', i, 'loadBalancerIPs6', j], `${lb} lies outside the lab's IPv6 networks (subnet6); pick one inside a network (e.g. the nodes' subnet6)`);
    });
    (s.loadBalancerSourceRanges6 ?? []).forEach((r, j) => {
      if (!parseCidr6(r)) c.at(['services', i, 'loadBalancerSourceRanges6', j], `${r} is not a valid IPv6 network in RFC 5952 form (host bits set, or not written as the kernel prints it${canonical(r.split('/')[0]!, `/${r.split('/')[1] ?? ''}`)})`);
    });
  });
}

/** Each Service's families settled, and its IPv6 ClusterIP inside cluster.serviceCIDR6 when it has IPv6. */
function checkServiceFamilies(c: CheckContext, serviceRange: Cidr6 | undefined, dual: boolean): void {
  const { t } = c;
  t.services.forEach((s, i) => {
    const path = (f: string) => ['services', i, f];
    const fam = serviceFamilies(s, dual);
    if (typeof fam === 'string') {
      c.at(path(s.ipFamilies && fam.startsWith('ipFamilies') ? 'ipFamilies' : 'ipFamilyPolicy'), fam);
      return;
    }
    const ips = s.clusterIPs ?? [s.clusterIP];
    if (ips[0] !== s.clusterIP) c.at(path('clusterIPs'), `clusterIPs[0] must be clusterIP (${s.clusterIP}), as the API server requires`);
    if (ips.length > fam.length) c.at(path('clusterIPs'), `${ips.length} ClusterIPs for ${fam.length} IP famil${fam.length === 1 ? 'y' : 'ies'} (${fam.join(', ')})`);
    if (fam.includes('IPv6')) {
      const v6 = ips[1];
      if (v6 === undefined) {
        c.at(path('clusterIPs'), `the Service is dual-stack, so it needs its IPv6 ClusterIP from cluster.serviceCIDR6 (${t.cluster.serviceCIDR6}), e.g. clusterIPs: [${s.clusterIP}, <IPv6>]`);
        return;
      }
      const a = ipAt(c, [...path('clusterIPs'), 1], v6);
      if (a === undefined) return;
      if (serviceRange && !cidr6Contains(serviceRange, a)) c.at([...path('clusterIPs'), 1], `${v6} is not inside cluster.serviceCIDR6 ${serviceRange.text}`);
      else c.claimAddress([...path('clusterIPs'), 1], v6);
    }
  });
}

function ipAt(c: CheckContext, path: PropertyKey[], text: string): bigint | undefined {
  const v = parseIPv6(text);
  if (v === undefined) c.at(path, `${text} is not a valid IPv6 address in RFC 5952 form${canonical(text, '')}`);
  return v;
}

/** ", write it as X" when the text is IPv6 in another form than RFC 5952. */
function canonical(text: string, suffix: string): string {
  const v = parseIPv6Loose(text);
  return v === undefined ? '' : `; write it as ${formatIPv6(v)}${suffix}`;
}
