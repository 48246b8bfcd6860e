import type { Node, ProxyMode, Topology } from '../../topology/schema.js';
import { bridgeAddressOf } from '../../topology/relations.js';
import { cidrContains, parseCidr, parseIPv4 } from '../../util/ipv4.js';

/**
 * kube-proxy's settings beyond its mode, with their defaults filled in as kube-proxy does
 * (cmd/kube-proxy options, pkg/proxy/util/nodeport_addresses.go, pkg/proxy/util/localdetector.go).
 * Pure: both proxiers, the plan (route_localnet) and the derived walkthrough read them here.
 */
export interface ProxySettings {
  /** --nodeport-addresses resolved: undefined matches every local address (MatchAll), else these CIDRs / "primary". */
  nodePortAddresses: string[] | undefined;
  /** --iptables-localhost-nodeports: NodePorts on 127.0.0.1 (iptables mode only; nftables never has them). */
  localhostNodePorts: boolean;
  masqueradeAll: boolean;
  detectLocalMode: 'ClusterCIDR' | 'NodeCIDR' | 'BridgeInterface' | 'InterfaceNamePrefix';
}

/** `mode`: the proxier that asks (its defaults differ); unset, the topology's. */
export function proxySettings(t: Topology, mode: ProxyMode = t.kubeProxy.mode): ProxySettings {
  const k = t.kubeProxy;
  const addresses = k.nodePortAddresses ?? (mode === 'nftables' ? ['primary'] : undefined);
  // 0.0.0.0/0 is the same as no restriction (NewNodePortAddresses' matchAll).
  const matchAll = addresses === undefined || addresses.includes('0.0.0.0/0');
  return {
    nodePortAddresses: matchAll ? undefined : addresses,
    localhostNodePorts: mode === 'iptables' && k.localhostNodePorts !== false,
    masqueradeAll: k.masqueradeAll === true,
    detectLocalMode: k.detectLocalMode ?? 'ClusterCIDR',
  };
}

/** Every IPv4 address a node holds: lo's, its own (primary first, then extraAddresses), its more interfaces', its bridge's. */
export function nodeAddresses(node: Node): string[] {
  return ['127.0.0.1', node.address, ...(node.extraAddresses ?? []), ...(node.interfaces ?? []).map((i) => i.address), bridgeAddressOf(node)];
}

const numeric = (a: string, b: string) => (parseIPv4(a) ?? 0) - (parseIPv4(b) ?? 0);

/**
 * The node addresses NodePorts answer on (GetNodeIPs): undefined when every local address does;
 * else each address inside one of the CIDRs, or the node's primary address for "primary", sorted.
 * Loopback addresses are left to the caller (the proxiers treat them differently).
 */
export function nodePortIPs(s: ProxySettings, node: Node): string[] | undefined {
  if (s.nodePortAddresses === undefined) return undefined;
  const out = new Set<string>();
  for (const entry of s.nodePortAddresses) {
    if (entry === 'primary') {
      out.add(node.address);
      continue;
    }
    const c = parseCidr(entry);
    for (const ip of nodeAddresses(node)) {
      const a = parseIPv4(ip);
      if (c && a !== undefined && cidrContains(c, a)) out.add(ip);
    }
  }
  return [...out].sort(numeric);
}

/** Whether NodePorts answer on 127.0.0.1 on this node (iptables only, and route_localnet is needed). */
export function localhostNodePortsOn(s: ProxySettings, node: Node): boolean {
  if (!s.localhostNodePorts) return false;
  const ips = nodePortIPs(s, node);
  return ips === undefined || ips.includes('127.0.0.1');
}

/** Whether a NodePort answers on `ip` of this node (the lab's own addresses; loopback as above). */
export function nodePortOpenOn(s: ProxySettings, node: Node, ip: string): boolean {
  if (ip === '127.0.0.1') return localhostNodePortsOn(s, node);
  const ips = nodePortIPs(s, node);
  return ips === undefined ? nodeAddresses(node).includes(ip) : ips.includes(ip);
}

/**
 * The local-traffic detector (LocalTrafficDetector): the matches that say "from a pod" (ifLocal)
 * and "not from a pod" (ifNotLocal), in each proxier's words.
 */
export interface LocalDetector {
  iptables: { ifLocal: string[]; ifNotLocal: string[] };
  nft: { ifLocal: string; ifNotLocal: string };
}

export function localDetector(t: Topology, node: Node | undefined): LocalDetector {
  const mode = t.kubeProxy.detectLocalMode ?? 'ClusterCIDR';
  const byCidr = (cidr: string): LocalDetector => {
    // The IPv6 proxier's view has IPv6 CIDRs: its match is ip6's.
    const family = cidr.includes(':') ? 'ip6' : 'ip';
    return {
      iptables: { ifLocal: ['-s', cidr], ifNotLocal: ['!', '-s', cidr] },
      nft: { ifLocal: `${family} saddr ${cidr}`, ifNotLocal: `${family} saddr != ${cidr}` },
    };
  };
  const byInterface = (name: string): LocalDetector => ({
    iptables: { ifLocal: ['-i', name], ifNotLocal: ['!', '-i', name] },
    nft: { ifLocal: `iifname ${nftInterface(name)}`, ifNotLocal: `iifname != ${nftInterface(name)}` },
  });
  switch (mode) {
    case 'NodeCIDR':
      return byCidr(node?.podCIDR ?? t.cluster.podCIDR);
    case 'BridgeInterface':
      return byInterface(t.kubeProxy.detectLocal?.bridgeInterface ?? node?.bridge ?? 'cbr0');
    case 'InterfaceNamePrefix':
      return byInterface(`${t.kubeProxy.detectLocal?.interfaceNamePrefix ?? 'veth'}+`);
    default:
      return byCidr(t.cluster.podCIDR);
  }
}

/** iptables' "veth+" prefix match is nftables' "veth*" wildcard. */
const nftInterface = (name: string) => (name.endsWith('+') ? `${name.slice(0, -1)}*` : name);
