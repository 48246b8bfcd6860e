import type { Topology } from '../../topology/schema.js';
import { nodeZone } from '../topology-hints.js';
import { categorizeEndpoints, servicePorts, trafficPolicies, type Endpoint, type ServicePortView } from '../endpoints.js';
import { cidrContains, parseCidr, parseIPv4 } from '../../util/ipv4.js';
import { cidr6Contains, isIPv6Text, parseCidr6, parseIPv6 } from '../../util/ipv6.js';
import { endpointChain, externalChain, firewallChain, serviceChain, serviceLocalChain } from './hash.js';
import { renderRestore, type Rule, type Table } from './rules.js';
import { familyOf } from '../../topology/family.js';
import { localDetector, nodePortIPs, proxySettings, type LocalDetector } from './settings.js';

/** kube-proxy's defaults: --iptables-masquerade-bit=14, ClientIP affinity timeout 3 hours. */
export const MASQ_MARK = '0x4000';
export const AFFINITY_SECONDS = 10800;

const comment = (text: string) => ['-m', 'comment', '--comment', text];
/** kube-proxy's protocol match: "-m tcp -p tcp" or "-m udp -p udp". */
const protoMatch = (protocol: string) => ['-m', protocol, '-p', protocol];

const cidrHas = (cidr: string, ip: string) => {
  if (isIPv6Text(ip)) {
    const c6 = parseCidr6(cidr);
    const a6 = parseIPv6(ip);
    return c6 !== undefined && a6 !== undefined && cidr6Contains(c6, a6);
  }
  const c = parseCidr(cidr);
  const a = parseIPv4(ip);
  return c !== undefined && a !== undefined && cidrContains(c, a);
};

/** kube-proxy prints probabilities with %0.10f. */
export function probability(index: number, count: number): string {
  return (1 / (count - index)).toFixed(10);
}

export interface NodeRuleset {
  node: string;
  nat: Table;
  filter: Table;
  /**
   * Every per-service nat chain this ruleset uses, written or not: a partial sync leaves an
   * unchanged service's chains out of the payload (they stay as they are), but they are still
   * in use, so no stale-chain sweep may delete them.
   */
  activeServiceChains: string[];
  /** More than 1000 endpoints: kube-proxy's largeClusterMode (no comments on endpoint rules, stale chains swept at most once per sync period). */
  largeClusterMode: boolean;
}

/** The per-service chains kube-proxy owns and deletes when they go stale. */
export const SERVICE_CHAIN = /^KUBE-(SVC|SVL|EXT|FW|SEP)-/;

/** kube-proxy's largeClusterEndpointsThreshold: above this many endpoints, endpoint rules lose their comments. */
export const LARGE_CLUSTER_ENDPOINTS = 1000;

/** kube-proxy's largeClusterMode: it counts every service port's endpoints, terminating ones too. */
export const isLargeClusterPorts = (ports: ServicePortView[]) => ports.reduce((n, sp) => n + sp.endpoints.length + sp.terminating.length, 0) > LARGE_CLUSTER_ENDPOINTS;

/** "namespace/name": the unit kube-proxy's change trackers report (UpdatedServices). */
export const serviceKey = (s: { namespace: string; name: string }) => `${s.namespace}/${s.name}`;

export interface RulesOptions {
  /**
   * A partial sync: only services this returns true for get their per-service chains
   * (KUBE-SVC/SVL/EXT/FW/SEP) declared and written; the top-level chains are always complete.
   */
  writeService?: (serviceKey: string) => boolean;
}

/**
 * The jumps from the built-in chains into kube-proxy's own. kube-proxy ensures these
 * once (iptables -I) rather than in each sync; the lab writes them in the first restore.
 */
export function baseJumps(): { nat: Rule[]; filter: Rule[] } {
  const NEW = ['-m', 'conntrack', '--ctstate', 'NEW'];
  return {
    nat: [
      { chain: 'PREROUTING', args: [...comment('kubernetes service portals'), '-j', 'KUBE-SERVICES'] },
      { chain: 'OUTPUT', args: [...comment('kubernetes service portals'), '-j', 'KUBE-SERVICES'] },
      { chain: 'POSTROUTING', args: [...comment('kubernetes postrouting rules'), '-j', 'KUBE-POSTROUTING'] },
    ],
    filter: [
      // The kubelet's jumps (kube-proxy ensures them too), prepended last so first in the chain.
      { chain: 'INPUT', args: ['-j', 'KUBE-FIREWALL'] },
      { chain: 'INPUT', args: [...NEW, ...comment('kubernetes load balancer firewall'), '-j', 'KUBE-PROXY-FIREWALL'] },
      { chain: 'INPUT', args: [...comment('kubernetes health check service ports'), '-j', 'KUBE-NODEPORTS'] },
      { chain: 'INPUT', args: [...NEW, ...comment('kubernetes externally-visible service portals'), '-j', 'KUBE-EXTERNAL-SERVICES'] },
      { chain: 'FORWARD', args: [...NEW, ...comment('kubernetes load balancer firewall'), '-j', 'KUBE-PROXY-FIREWALL'] },
      { chain: 'FORWARD', args: [...comment('kubernetes forwarding rules'), '-j', 'KUBE-FORWARD'] },
      { chain: 'FORWARD', args: [...NEW, ...comment('kubernetes service portals'), '-j', 'KUBE-SERVICES'] },
      { chain: 'FORWARD', args: [...NEW, ...comment('kubernetes externally-visible service portals'), '-j', 'KUBE-EXTERNAL-SERVICES'] },
      { chain: 'OUTPUT', args: ['-j', 'KUBE-FIREWALL'] },
      { chain: 'OUTPUT', args: [...NEW, ...comment('kubernetes load balancer firewall'), '-j', 'KUBE-PROXY-FIREWALL'] },
      { chain: 'OUTPUT', args: [...NEW, ...comment('kubernetes service portals'), '-j', 'KUBE-SERVICES'] },
    ],
  };
}

/**
 * What kube-proxy's iptables proxier writes on one node for the given topology, in its order:
 * filter chains then nat chains; per service the KUBE-SERVICES and KUBE-NODEPORTS entries,
 * the masquerade rule, KUBE-EXT, the endpoint jumps, the KUBE-SEP chains; the
 * "must be the last rule" jump to KUBE-NODEPORTS at the end. Pure.
 */
export function kubeProxyRules(t: Topology, nodeName: string, opts: RulesOptions = {}): NodeRuleset {
  const nat: Table = { name: 'nat', chains: ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ'], rules: [] };
  const filter: Table = {
    name: 'filter',
    chains: ['KUBE-NODEPORTS', 'KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FIREWALL', 'KUBE-FORWARD', 'KUBE-PROXY-FIREWALL'],
    rules: [],
  };
  const active: string[] = [];
  const w = writer(nat, filter, active);
  const ports = servicePorts(t);
  const largeClusterMode = isLargeClusterPorts(ports);

  w.nat('KUBE-POSTROUTING', '-m', 'mark', '!', '--mark', `${MASQ_MARK}/${MASQ_MARK}`, '-j', 'RETURN');
  w.nat('KUBE-POSTROUTING', '-j', 'MARK', '--xor-mark', MASQ_MARK);
  w.nat('KUBE-POSTROUTING', ...comment('kubernetes service traffic requiring SNAT'), '-j', 'MASQUERADE', '--random-fully');
  w.nat('KUBE-MARK-MASQ', '-j', 'MARK', '--or-mark', MASQ_MARK);

  const node = t.nodes.find((n) => n.name === nodeName);
  const settings = proxySettings(t, 'iptables');
  const ctx: PortContext = { nodeName, nodeIP: node?.address, zone: nodeZone(node), detector: localDetector(t, node), masqueradeAll: settings.masqueradeAll, largeClusterMode };
  for (const sp of ports) {
    const write = opts.writeService?.(serviceKey(sp.service)) ?? true;
    writeServicePort(sp, ctx, write ? w : skipping(w, active));
  }

  // The IPv6 proxier (ip6tables) never accepts NodePorts on ::1: the kernel cannot route_localnet
  // IPv6, so kube-proxy excludes it whatever --iptables-localhost-nodeports says.
  const v6 = familyOf(t) === 'IPv6';
  const localhost = v6 ? '::1' : '127.0.0.1';
  const localhostNodePorts = settings.localhostNodePorts && !v6;
  const lastRule = comment('kubernetes service nodeports; NOTE: this must be the last rule in this chain');
  const ips = node ? nodePortIPs(settings, node) : undefined;
  if (ips === undefined) {
    // --nodeport-addresses unset: every local address; loopback left out when localhost NodePorts are off.
    const noLocalhost = localhostNodePorts ? [] : ['!', '-d', v6 ? '::1/128' : '127.0.0.0/8'];
    w.nat('KUBE-SERVICES', ...lastRule, '-m', 'addrtype', '--dst-type', 'LOCAL', ...noLocalhost, '-j', 'KUBE-NODEPORTS');
  } else {
    // One jump per node address the CIDRs (or "primary") match; loopback only with localhost NodePorts.
    for (const ip of ips) if (ip !== localhost || localhostNodePorts) w.nat('KUBE-SERVICES', ...lastRule, '-d', ip, '-j', 'KUBE-NODEPORTS');
  }
  // Localhost NodePorts (on by default in iptables mode) need route_localnet=1; this guard keeps
  // anything but a NodePort DNAT from reaching 127.0.0.0/8 from outside. kube-proxy writes it only
  // with localhost NodePorts on, but the kubelet writes the same rule on every node, so it stays.
  // IPv4 only: IPv6 has no localhost NodePorts, so nothing to guard.
  if (!v6) w.filter('KUBE-FIREWALL', ...comment('block incoming localnet connections'), '-d', '127.0.0.0/8', '!', '-s', '127.0.0.0/8', '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED,DNAT', '-j', 'DROP');
  // Upstream also counts these drops with -m nfacct (ct_state_invalid_dropped_pkts); left out, see docs/fidelity.md.
  w.filter('KUBE-FORWARD', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP');
  w.filter('KUBE-FORWARD', ...comment('kubernetes forwarding rules'), '-m', 'mark', '--mark', `${MASQ_MARK}/${MASQ_MARK}`, '-j', 'ACCEPT');
  w.filter('KUBE-FORWARD', ...comment('kubernetes forwarding conntrack rule'), '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT');
  return { node: nodeName, nat, filter, activeServiceChains: active, largeClusterMode };
}

interface Writer {
  nat: (chain: string, ...args: string[]) => void;
  filter: (chain: string, ...args: string[]) => void;
  /** Declare a per-service nat chain. */
  natChain: (chain: string) => void;
}
function writer(nat: Table, filter: Table, active: string[]): Writer {
  return {
    nat: (chain, ...args) => void nat.rules.push({ chain, args }),
    filter: (chain, ...args) => void filter.rules.push({ chain, args }),
    natChain: (chain) => {
      nat.chains.push(chain);
      active.push(chain);
    },
  };
}

/**
 * What a partial sync writes for a service that did not change: its entries in the top-level
 * chains (KUBE-SERVICES, KUBE-NODEPORTS, the filter chains) but not its own chains, which keep
 * what the last sync wrote; they are noted as still in use.
 */
function skipping(w: Writer, active: string[]): Writer {
  return {
    nat: (chain, ...args) => {
      if (!SERVICE_CHAIN.test(chain)) w.nat(chain, ...args);
    },
    filter: w.filter,
    natChain: (chain) => void active.push(chain),
  };
}

/** What every service port's rules on one node share: the node, the local-traffic detector, --masquerade-all. */
interface PortContext {
  nodeName: string;
  nodeIP: string | undefined;
  /** The node's zone, for trafficDistribution's hints. */
  zone: string | undefined;
  detector: LocalDetector;
  masqueradeAll: boolean;
  largeClusterMode: boolean;
}

function writeServicePort(sp: ServicePortView, ctx: PortContext, w: Writer): void {
  const { nodeName, nodeIP, zone, largeClusterMode, detector } = ctx;
  const { service, port, name: spn } = sp;
  const proto = protoMatch(sp.protocol);
  const svcChain = serviceChain(spn, sp.protocol);
  const svlChain = serviceLocalChain(spn, sp.protocol);
  const extChain = externalChain(spn, sp.protocol);
  const fwChain = firewallChain(spn, sp.protocol);
  // Ready endpoints, or serving-terminating ones where a policy has no ready one (CategorizeEndpoints).
  const { cluster, local, reachable, hasAny: hasEndpoints } = categorizeEndpoints(sp, nodeName, zone);
  const { external, externalLocal, internalLocal, usesCluster: usesSVC, usesLocal: usesSVL } = trafficPolicies(service);
  const clusterDst = [...proto, '-d', service.clusterIP, '--dport', String(port.port)];
  const dst = (ip: string) => [...proto, '-d', ip, '--dport', String(port.port)];
  const nodePort = external ? port.nodePort : undefined;
  const usesFW = hasEndpoints && service.loadBalancerIPs.length > 0 && service.loadBalancerSourceRanges.length > 0;

  // The health check node port of a Local LoadBalancer service is accepted on every node (kube-proxy
  // answers it): as upstream's proxier, one rule per service port (the same port for each, named by
  // each), with or without endpoints. The nftables proxier writes no such rule.
  if (externalLocal && service.healthCheckNodePort) {
    w.filter('KUBE-NODEPORTS', ...comment(`${spn} health check node port`), ...protoMatch('tcp'), '--dport', String(service.healthCheckNodePort), '-j', 'ACCEPT');
  }

  if (!hasEndpoints) {
    // No usable endpoint anywhere (ready, or serving-terminating): reject in the filter table, no NAT chains at all.
    w.filter('KUBE-SERVICES', ...comment(`${spn} has no endpoints`), ...clusterDst, '-j', 'REJECT');
    for (const ip of [...service.externalIPs, ...service.loadBalancerIPs]) w.filter('KUBE-EXTERNAL-SERVICES', ...comment(`${spn} has no endpoints`), ...dst(ip), '-j', 'REJECT');
    if (nodePort !== undefined) {
      w.filter('KUBE-EXTERNAL-SERVICES', ...comment(`${spn} has no endpoints`), '-m', 'addrtype', '--dst-type', 'LOCAL', ...proto, '--dport', String(nodePort), '-j', 'REJECT');
    }
    return;
  }

  // kube-proxy creates a policy chain only when it has endpoints to list: no local endpoint, no KUBE-SVL.
  const hasSVL = usesSVL && local.length > 0;
  const internalChain = internalLocal ? svlChain : svcChain;
  const hasInternalEndpoints = !internalLocal || local.length > 0;
  if (external) w.natChain(extChain);
  if (usesFW) w.natChain(fwChain);
  if (usesSVC) w.natChain(svcChain);
  if (hasSVL) w.natChain(svlChain);
  // Endpoint chains for the endpoints this node can reach (allLocallyReachableEndpoints): the
  // Cluster set, the Local set, or their union when one of them fell back to terminating endpoints.
  const sepChains = reachable.map((e) => endpointChain(spn, sp.protocol, e.address));
  sepChains.forEach((c) => w.natChain(c));

  // Entry points: ClusterIP, external IPs, load balancer IPs, the NodePort.
  if (!hasInternalEndpoints) {
    w.filter('KUBE-SERVICES', ...comment(`${spn} has no local endpoints`), ...clusterDst, '-j', 'DROP');
  } else {
    w.nat('KUBE-SERVICES', ...comment(`${spn} cluster IP`), ...clusterDst, '-j', internalChain);
  }
  for (const ip of service.externalIPs) w.nat('KUBE-SERVICES', ...comment(`${spn} external IP`), ...dst(ip), '-j', extChain);
  for (const lb of service.loadBalancerIPs) {
    w.nat('KUBE-SERVICES', ...comment(`${spn} loadbalancer IP`), ...dst(lb), '-j', usesFW ? fwChain : extChain);
    if (usesFW) w.filter('KUBE-PROXY-FIREWALL', ...comment(`${spn} traffic not accepted by ${fwChain}`), ...dst(lb), '-j', 'DROP');
  }
  if (nodePort !== undefined) w.nat('KUBE-NODEPORTS', ...comment(spn), ...proto, '--dport', String(nodePort), '-j', extChain);
  if (externalLocal && local.length === 0) {
    for (const ip of [...service.externalIPs, ...service.loadBalancerIPs]) w.filter('KUBE-EXTERNAL-SERVICES', ...comment(`${spn} has no local endpoints`), ...dst(ip), '-j', 'DROP');
    if (nodePort !== undefined) {
      w.filter('KUBE-EXTERNAL-SERVICES', ...comment(`${spn} has no local endpoints`), '-m', 'addrtype', '--dst-type', 'LOCAL', ...proto, '--dport', String(nodePort), '-j', 'DROP');
    }
  }

  // loadBalancerSourceRanges: allowed sources go on to KUBE-EXT; the rest fall through to the filter DROP.
  if (usesFW) {
    const sources = [...service.loadBalancerSourceRanges];
    // A node inside a range may reach the VIP looped back with the VIP as source.
    if (nodeIP && service.loadBalancerSourceRanges.some((r) => cidrHas(r, nodeIP))) sources.push(...service.loadBalancerIPs);
    for (const src of sources) w.nat(fwChain, ...comment(`${spn} loadbalancer IP`), '-s', src, '-j', extChain);
    w.nat(fwChain, ...comment(`other traffic to ${spn} will be dropped by KUBE-PROXY-FIREWALL`));
  }

  // Off-cluster sources reaching the ClusterIP get masqueraded (the local-traffic detector; every source with --masquerade-all).
  if (hasInternalEndpoints) w.nat(internalChain, ...comment(`${spn} cluster IP`), ...clusterDst, ...(ctx.masqueradeAll ? [] : detector.iptables.ifNotLocal), '-j', 'KUBE-MARK-MASQ');

  if (external && !externalLocal) {
    w.nat(extChain, ...comment(`masquerade traffic for ${spn} external destinations`), '-j', 'KUBE-MARK-MASQ');
    w.nat(extChain, '-j', svcChain);
  } else if (externalLocal) {
    w.nat(extChain, ...comment(`pod traffic for ${spn} external destinations`), ...detector.iptables.ifLocal, '-j', svcChain);
    w.nat(extChain, ...comment(`masquerade LOCAL traffic for ${spn} external destinations`), '-m', 'addrtype', '--src-type', 'LOCAL', '-j', 'KUBE-MARK-MASQ');
    w.nat(extChain, ...comment(`route LOCAL traffic for ${spn} external destinations`), '-m', 'addrtype', '--src-type', 'LOCAL', '-j', svcChain);
    if (local.length > 0) w.nat(extChain, '-j', svlChain);
  }

  const affinity = service.sessionAffinity === 'ClientIP' ? service.sessionAffinityTimeoutSeconds : undefined;
  // kube-proxy's appendServiceCommentLocked: endpoint rules carry no comment in largeClusterMode (a smaller restore).
  const endpointComment = (text: string) => (largeClusterMode ? [] : comment(text));
  if (usesSVC) writeEndpointJumps(svcChain, spn, sp, cluster, affinity, w, endpointComment);
  if (hasSVL) writeEndpointJumps(svlChain, spn, sp, local, affinity, w, endpointComment);

  reachable.forEach((e, i) => {
    const chain = sepChains[i]!;
    w.nat(chain, ...endpointComment(spn), '-s', e.ip, '-j', 'KUBE-MARK-MASQ');
    const recentSet = affinity ? ['-m', 'recent', '--name', chain, '--set'] : [];
    w.nat(chain, ...endpointComment(spn), ...recentSet, ...proto, '-j', 'DNAT', '--to-destination', e.address);
  });
}

/** `affinity`: sessionAffinity ClientIP's timeout in seconds, or undefined without affinity. */
function writeEndpointJumps(
  chain: string,
  spn: string,
  sp: ServicePortView,
  endpoints: Endpoint[],
  affinity: number | undefined,
  w: Writer,
  endpointComment: (text: string) => string[],
): void {
  const sepOf = (e: Endpoint) => endpointChain(spn, sp.protocol, e.address);
  if (affinity !== undefined) {
    for (const e of endpoints) {
      w.nat(chain, ...endpointComment(`${spn} -> ${e.address}`), '-m', 'recent', '--name', sepOf(e), '--rcheck', '--seconds', String(affinity), '--reap', '-j', sepOf(e));
    }
  }
  endpoints.forEach((e, i) => {
    const stat = i < endpoints.length - 1 ? ['-m', 'statistic', '--mode', 'random', '--probability', probability(i, endpoints.length)] : [];
    w.nat(chain, ...endpointComment(`${spn} -> ${e.address}`), ...stat, '-j', sepOf(e));
  });
}

/**
 * The first restore on a fresh node: kube-proxy's tables plus the jumps into them from the
 * built-in chains (kube-proxy prepends those with iptables -I; the result in iptables-save is the same).
 * Applied with iptables-restore --noflush, as kube-proxy applies every sync.
 */
export function initialRestore(rules: NodeRuleset): string {
  const jumps = baseJumps();
  return renderRestore([
    // The empty canary chains: kube-proxy and the kubelet watch them to notice a flushed table.
    { name: 'mangle', chains: ['KUBE-IPTABLES-HINT', ...CANARIES], rules: [] },
    { ...rules.filter, chains: [...rules.filter.chains, ...CANARIES], rules: [...jumps.filter, ...rules.filter.rules] },
    { ...rules.nat, chains: [...rules.nat.chains, ...CANARIES], rules: [...jumps.nat, ...rules.nat.rules] },
  ]);
}

/** KUBE-KUBELET-CANARY (the kubelet's) and KUBE-PROXY-CANARY, empty in mangle, nat and filter. */
export const CANARIES = ['KUBE-KUBELET-CANARY', 'KUBE-PROXY-CANARY'];

/** A resync after endpoints change: kube-proxy's own chains (declaring them flushes them), stale ones deleted. */
export function resyncRestore(rules: NodeRuleset, staleNatChains: string[] = []): string {
  return renderRestore([rules.filter, { ...rules.nat, deleteChains: staleNatChains }]);
}
