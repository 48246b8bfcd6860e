import { cidr6Contains, cidrs6Overlap, firstHost6, parseCidr6, parseIPv6, parseIPv6Loose, formatIPv6, unusableRange6, type Cidr6 } from '../../util/ipv6.js';
import { serviceFamilies } from '../family.js';
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
