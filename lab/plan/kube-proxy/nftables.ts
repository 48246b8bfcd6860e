import type { Topology } from '../../topology/schema.js';
import { nodeZone } from '../topology-hints.js';
import { categorizeEndpoints, servicePorts, trafficPolicies, type Endpoint, type ServicePortView } from '../endpoints.js';
import { nftEndpointKey, nftNameBase, nftServiceKey } from './hash.js';
import { MASQ_MARK, serviceKey } from './iptables.js';
import { familyOf } from '../../topology/family.js';
import { joinHostPort } from '../../util/ipv6.js';
import { localDetector, nodePortIPs, proxySettings, type LocalDetector } from './settings.js';

/**
 * kube-proxy's nftables mode (pkg/proxy/nftables/proxier.go, v1.34): one table `ip kube-proxy`,
 * services dispatched by verdict maps (one lookup, whatever the number of services) instead of
 * a rule list walked top to bottom. Rules as data here; rendered as an `nft -f` transaction.
 */
export const NFT_TABLE = 'kube-proxy';
/** The nftables family of a ruleset: kube-proxy's IPv4 proxier writes `table ip kube-proxy`, its IPv6 one `table ip6 kube-proxy`. */
export type NftFamily = 'ip' | 'ip6';

export interface NftContainer {
  kind: 'set' | 'map';
  name: string;
  type: string;
  comment?: string;
  /** Affinity sets: "dynamic,timeout" and their timeout in seconds. */
  flags?: string;
  timeout?: number;
}

export interface NftChain {
  name: string;
  /** A base chain hooked into netfilter: "filter hook input priority 0". */
  base?: { type: 'filter' | 'nat'; hook: string; priority: number };
  comment?: string;
}

export interface NftRule {
  chain: string;
  rule: string;
  comment?: string;
}

export interface NftElement {
  container: string;
  key: string;
  value?: string;
  comment?: string;
}

export interface NftRuleset {
  node: string;
  /** ip (IPv4) or ip6 (the IPv6 proxier of a dual-stack cluster): the table's family and the address matches (ip daddr / ip6 daddr). */
  family: NftFamily;
  containers: NftContainer[];
  chains: NftChain[];
  rules: NftRule[];
  elements: NftElement[];
  /** Every per-service chain in use, written or not (a partial sync leaves unchanged services' chains out). */
  activeChains: string[];
  /** Every affinity set in use, written or not. */
  activeSets: string[];
}

export interface NftRulesOptions {
  /**
   * A partial sync: only services this returns true for get their chains, rules and affinity
   * sets written; every service's map and set elements are still computed (the sync diffs them).
   */
  writeService?: (serviceKey: string) => boolean;
}

/** Chains whose names carry a "/" are per-service (service-, external-, local-, endpoint-, firewall-): kube-proxy's test for stale ones. */
export const isServiceChain = (name: string) => name.includes('/');
export const isAffinitySet = (name: string) => name.startsWith('affinity-');

// Base chains, v1.34: filtering on pre-DNAT destinations runs before DNAT (-110); the rest at filter priority (0).
const BASE_CHAINS: NftChain[] = [
  { name: 'filter-prerouting-pre-dnat', base: { type: 'filter', hook: 'prerouting', priority: -110 } },
  { name: 'filter-output-pre-dnat', base: { type: 'filter', hook: 'output', priority: -110 } },
  { name: 'filter-forward', base: { type: 'filter', hook: 'forward', priority: 0 } },
  { name: 'filter-input', base: { type: 'filter', hook: 'input', priority: 0 } },
  { name: 'filter-output', base: { type: 'filter', hook: 'output', priority: 0 } },
  { name: 'nat-output', base: { type: 'nat', hook: 'output', priority: -100 } },
  { name: 'nat-postrouting', base: { type: 'nat', hook: 'postrouting', priority: 100 } },
  { name: 'nat-prerouting', base: { type: 'nat', hook: 'prerouting', priority: -100 } },
];

// The jumps from base chains into kube-proxy's top-level chains, in the order kube-proxy adds them.
const JUMPS: [from: string, to: string, match: string][] = [
  ['filter-input', 'nodeport-endpoints-check', 'ct state new'],
  ['filter-input', 'service-endpoints-check', 'ct state new'],
  ['filter-forward', 'service-endpoints-check', 'ct state new'],
  ['filter-output', 'service-endpoints-check', 'ct state new'],
  ['filter-prerouting-pre-dnat', 'firewall-check', 'ct state new'],
  ['filter-output-pre-dnat', 'firewall-check', 'ct state new'],
  ['nat-output', 'services', ''],
  ['nat-prerouting', 'services', ''],
  ['nat-postrouting', 'masquerading', ''],
  ['filter-forward', 'cluster-ips-check', 'ct state new'],
  ['filter-output', 'cluster-ips-check', 'ct state new'],
];

const addrProtoPort = (addr: string) => `${addr} . inet_proto . inet_service : verdict`;
const PROTO_PORT = 'inet_proto . inet_service : verdict';

/**
 * What kube-proxy's nftables proxier writes on one node: the fixed skeleton (setupNFTables) and,
 * per service port, its chains and map elements (syncProxyRules). Pure.
 */
export function nftablesRules(t: Topology, nodeName: string, opts: NftRulesOptions = {}): NftRuleset {
  const node = t.nodes.find((n) => n.name === nodeName);
  const family: NftFamily = familyOf(t) === 'IPv6' ? 'ip6' : 'ip';
  const ip = family;
  const addr = family === 'ip6' ? 'ipv6_addr' : 'ipv4_addr';
  const ADDR_PROTO_PORT = addrProtoPort(addr);
  const r: NftRuleset = { node: nodeName, family, containers: [], chains: [], rules: [], elements: [], activeChains: [], activeSets: [] };
  const rule = (chain: string, text: string, comment?: string) => void r.rules.push({ chain, rule: text, comment });
  const element = (container: string, key: string, value?: string, comment?: string) => void r.elements.push({ container, key, value, comment });

  const settings = proxySettings(t, 'nftables');
  // --nodeport-addresses: the node's matching addresses in @nodeport-ips, or every local one (fib) when unrestricted.
  const nodePortIps = node ? nodePortIPs(settings, node) : [];
  const nodePortDst = nodePortIps === undefined ? `fib daddr type local ${ip} daddr != ${ip === 'ip6' ? '::1' : '127.0.0.0/8'}` : `${ip} daddr @nodeport-ips`;
  r.containers.push(
    { kind: 'set', name: 'cluster-ips', type: addr, comment: 'Active ClusterIPs' },
    ...(nodePortIps === undefined ? [] : [{ kind: 'set' as const, name: 'nodeport-ips', type: addr, comment: 'IPs that accept NodePort traffic' }]),
    { kind: 'map', name: 'firewall-ips', type: ADDR_PROTO_PORT, comment: 'destinations that are subject to LoadBalancerSourceRanges' },
    { kind: 'map', name: 'no-endpoint-nodeports', type: PROTO_PORT, comment: 'vmap to drop or reject packets to service nodeports with no endpoints' },
    { kind: 'map', name: 'no-endpoint-services', type: ADDR_PROTO_PORT, comment: 'vmap to drop or reject packets to services with no endpoints' },
    { kind: 'map', name: 'service-ips', type: ADDR_PROTO_PORT, comment: 'ClusterIP, ExternalIP and LoadBalancer IP traffic' },
    { kind: 'map', name: 'service-nodeports', type: PROTO_PORT, comment: 'NodePort traffic' },
  );
  r.chains.push(...BASE_CHAINS);
  for (const name of ['cluster-ips-check', 'firewall-check', 'mark-for-masquerade', 'masquerading', 'nodeport-endpoints-check', 'services', 'service-endpoints-check']) r.chains.push({ name });
  r.chains.push({ name: 'reject-chain', comment: 'helper for @no-endpoint-services / @no-endpoint-nodeports' });

  for (const [from, to, match] of JUMPS) rule(from, `${match ? `${match} ` : ''}jump ${to}`);
  rule('cluster-ips-check', `${ip} daddr @cluster-ips reject`, 'Reject traffic to invalid ports of ClusterIPs');
  rule('cluster-ips-check', `${ip} daddr { ${t.cluster.serviceCIDR} } drop`, 'Drop traffic to unallocated ClusterIPs');
  rule('firewall-check', `${ip} daddr . meta l4proto . th dport vmap @firewall-ips`);
  rule('mark-for-masquerade', `mark set mark or ${MASQ_MARK}`);
  rule('masquerading', `mark and ${MASQ_MARK} == 0 return`);
  rule('masquerading', `mark set mark xor ${MASQ_MARK}`);
  rule('masquerading', 'masquerade fully-random');
  // --nodeport-addresses defaults to "primary" in nftables mode: NodePorts answer on the node IP only, never on 127.0.0.1.
  rule('nodeport-endpoints-check', `${nodePortDst} meta l4proto . th dport vmap @no-endpoint-nodeports`);
  rule('reject-chain', 'reject');
  rule('services', `${ip} daddr . meta l4proto . th dport vmap @service-ips`);
  rule('services', `${nodePortDst} meta l4proto . th dport vmap @service-nodeports`);
  rule('service-endpoints-check', `${ip} daddr . meta l4proto . th dport vmap @no-endpoint-services`);
  // nftables mode has no localhost NodePorts: a loopback address is left out of the set.
  for (const a of nodePortIps ?? []) if (a !== '127.0.0.1' && a !== '::1') element('nodeport-ips', a);

  const ctx: PortContext = { nodeName, zone: nodeZone(node), detector: localDetector(t, node), masqueradeAll: settings.masqueradeAll };
  for (const sp of servicePorts(t)) writeServicePort(sp, ctx, r, opts.writeService?.(serviceKey(sp.service)) ?? true);
  return r;
}

/** Chain and set names of one service port, as kube-proxy derives them. */
export function nftServiceNames(sp: Pick<ServicePortView, 'service' | 'port' | 'protocol'>) {
  const key = nftServiceKey(sp.service.namespace, sp.service.name, sp.protocol, sp.port.name);
  const base = nftNameBase(key);
  return { key, service: `service-${base}`, local: `local-${base}`, external: `external-${base}`, firewall: `firewall-${base}` };
}

export function nftEndpointNames(serviceKey: string, e: Pick<Endpoint, 'ip' | 'port'>) {
  const base = nftNameBase(nftEndpointKey(serviceKey, e.ip, e.port));
  return { chain: `endpoint-${base}`, affinitySet: `affinity-${base}` };
}

/** `write` false: a partial sync and an unchanged service, so only its map and set elements are written; its chains stay as they are. */
/** What every service port's rules on one node share: the node, the local-traffic detector, --masquerade-all. */
interface PortContext {
  nodeName: string;
  /** The node's zone, for trafficDistribution's hints. */
  zone: string | undefined;
  detector: LocalDetector;
  masqueradeAll: boolean;
}

function writeServicePort(sp: ServicePortView, ctx: PortContext, r: NftRuleset, write: boolean): void {
  const { nodeName, zone, detector } = ctx;
  const { service, port } = sp;
  const names = nftServiceNames(sp);
  const chain = (name: string) => {
    r.activeChains.push(name);
    if (write) r.chains.push({ name });
  };
  const rule = (c: string, text: string, comment?: string) => void (write && r.rules.push({ chain: c, rule: text, comment }));
  const element = (container: string, key: string, value?: string, comment?: string) => void r.elements.push({ container, key, value, comment });
  const proto = sp.protocol;
  const ip = r.family;
  const { external, externalLocal, internalLocal, usesCluster: usesClusterEndpoints, usesLocal: usesLocalEndpoints } = trafficPolicies(service);
  const affinity = service.sessionAffinity === 'ClientIP';

  // Ready endpoints, or serving-terminating ones where a policy has no ready one (CategorizeEndpoints).
  const { cluster, local, reachable, hasAny: hasEndpoints } = categorizeEndpoints(sp, nodeName, zone);
  const usesClusterChain = cluster.length > 0 && usesClusterEndpoints;
  const usesLocalChain = local.length > 0 && usesLocalEndpoints;
  const internalChain = internalLocal ? names.local : names.service;
  const hasInternal = internalLocal ? local.length > 0 : hasEndpoints;
  const externalPolicyChain = externalLocal ? names.local : names.service;
  const hasExternal = externalLocal ? local.length > 0 : hasEndpoints;
  const usesExternalChain = hasEndpoints && external;
  const usesFirewall = service.loadBalancerIPs.length > 0 && service.loadBalancerSourceRanges.length > 0;

  const internalVerdict = !hasEndpoints ? 'goto reject-chain' : 'drop';
  const externalVerdict = !hasEndpoints ? 'goto reject-chain' : 'drop';
  const at = (ip: string) => `${ip} . ${proto} . ${port.port}`;

  // Maps and sets: where each of the service's addresses goes.
  element('cluster-ips', service.clusterIP);
  if (hasInternal) element('service-ips', at(service.clusterIP), `goto ${internalChain}`);
  else element('no-endpoint-services', at(service.clusterIP), internalVerdict, sp.name);
  for (const ip of service.externalIPs) {
    if (hasEndpoints) element('service-ips', at(ip), `goto ${names.external}`);
    if (!hasExternal) element('no-endpoint-services', at(ip), externalVerdict, sp.name);
  }
  for (const ip of service.loadBalancerIPs) {
    if (hasEndpoints) element('service-ips', at(ip), `goto ${names.external}`);
    if (usesFirewall) element('firewall-ips', at(ip), `goto ${names.firewall}`);
  }
  if (!hasExternal) for (const ip of service.loadBalancerIPs) element('no-endpoint-services', at(ip), externalVerdict, sp.name);
  if (external && port.nodePort !== undefined) {
    if (hasEndpoints) element('service-nodeports', `${proto} . ${port.nodePort}`, `goto ${names.external}`);
    if (!hasExternal) element('no-endpoint-nodeports', `${proto} . ${port.nodePort}`, externalVerdict, sp.name);
  }
  if (!hasEndpoints) return;

  // Chains: the policy chains, the external entry chain, the firewall, one chain per endpoint.
  if (usesClusterChain) chain(names.service);
  if (hasInternal) rule(internalChain, `${ip} daddr ${service.clusterIP} ${ctx.masqueradeAll ? '' : `${detector.nft.ifNotLocal} `}jump mark-for-masquerade`);
  if (usesExternalChain) {
    chain(names.external);
    if (!externalLocal) {
      rule(names.external, 'jump mark-for-masquerade');
    } else {
      rule(names.external, `${detector.nft.ifLocal} goto ${names.service}`, 'short-circuit pod traffic');
      rule(names.external, 'fib saddr type local jump mark-for-masquerade', 'masquerade local traffic');
      rule(names.external, `fib saddr type local goto ${names.service}`, 'short-circuit local traffic');
    }
    if (hasExternal) rule(names.external, `goto ${externalPolicyChain}`);
  }
  if (usesFirewall) {
    chain(names.firewall);
    rule(names.firewall, `${ip} saddr != { ${service.loadBalancerSourceRanges.join(', ')} } drop`);
  }
  if (affinity) {
    for (const e of reachable) {
      const name = nftEndpointNames(names.key, e).affinitySet;
      r.activeSets.push(name);
      if (write) r.containers.push({ kind: 'set', name, type: ip === 'ip6' ? 'ipv6_addr' : 'ipv4_addr', flags: 'dynamic,timeout', timeout: service.sessionAffinityTimeoutSeconds });
    }
  }
  if (usesClusterChain && write) writeEndpointDispatch(names.service, names.key, cluster, affinity, r);
  if (usesLocalChain) {
    chain(names.local);
    if (write) writeEndpointDispatch(names.local, names.key, local, affinity, r);
  }
  for (const e of reachable) {
    const ep = nftEndpointNames(names.key, e);
    chain(ep.chain);
    rule(ep.chain, `${ip} saddr ${e.ip} jump mark-for-masquerade`);
    if (affinity) rule(ep.chain, `update @${ep.affinitySet} { ${ip} saddr }`);
    rule(ep.chain, `meta l4proto ${proto} dnat to ${joinHostPort(e.ip, e.port)}`);
  }
}

/** Affinity lookups first, then one random pick among the endpoints: `numgen random mod N vmap {...}`. */
function writeEndpointDispatch(chain: string, serviceKey: string, endpoints: Endpoint[], affinity: boolean, r: NftRuleset): void {
  const eps = endpoints.map((e) => nftEndpointNames(serviceKey, e));
  if (affinity) for (const ep of eps) r.rules.push({ chain, rule: `${r.family} saddr @${ep.affinitySet} goto ${ep.chain}` });
  const choices = eps.map((ep, i) => `${i} : goto ${ep.chain}`).join(' , ');
  r.rules.push({ chain, rule: `numgen random mod ${eps.length} vmap { ${choices} }` });
}

const quoted = (text: string) => `"${text.replace(/"/g, '\\"')}"`;
const headOf = (family: NftFamily) => `${family} ${NFT_TABLE}`;

function containerLine(c: NftContainer, head: string): string {
  const props = [`type ${c.type}`];
  if (c.flags) props.push(`flags ${c.flags}`);
  if (c.timeout !== undefined) props.push(`timeout ${c.timeout}s`);
  if (c.comment) props.push(`comment ${quoted(c.comment)}`);
  return `add ${c.kind} ${head} ${c.name} { ${props.join(' ; ')} ; }`;
}

function chainLine(c: NftChain, head: string): string {
  const props: string[] = [];
  if (c.base) props.push(`type ${c.base.type} hook ${c.base.hook} priority ${c.base.priority}`);
  if (c.comment) props.push(`comment ${quoted(c.comment)}`);
  return `add chain ${head} ${c.name}${props.length ? ` { ${props.join(' ; ')} ; }` : ''}`;
}

export const ruleLine = (r: NftRule, head = headOf('ip')) => `add rule ${head} ${r.chain} ${r.rule}${r.comment ? ` comment ${quoted(r.comment)}` : ''}`;

function elementLine(e: NftElement, head: string): string {
  const key = `${e.key}${e.comment ? ` comment ${quoted(e.comment)}` : ''}`;
  return `add element ${head} ${e.container} { ${key}${e.value ? ` : ${e.value}` : ''} }`;
}

/** The ruleset as the `add …` lines upstream's tests compare (knftables' fake dump, unsorted). */
export function renderNftAdds(r: NftRuleset): string[] {
  const head = headOf(r.family);
  return [
    `add table ${head} { comment "rules for kube-proxy" ; }`,
    ...r.containers.map((c) => containerLine(c, head)),
    ...r.chains.map((c) => chainLine(c, head)),
    ...r.rules.map((x) => ruleLine(x, head)),
    ...r.elements.map((e) => elementLine(e, head)),
  ];
}

export interface NftExisting {
  chains: string[];
  sets: string[];
}

export interface NftSyncPlan {
  payload: string;
  /** Per-service chains this sync creates. */
  added: string[];
  /** Per-service chains the node had that nothing uses any more: flushed, then deleted. */
  removed: string[];
}

/**
 * One `nft -f` transaction that makes the node's table match the ruleset, as a kube-proxy full
 * sync does: every chain, set and map it owns is declared and flushed, then written again;
 * stale per-service chains are flushed and deleted, stale affinity sets deleted. Affinity sets
 * still in use are declared but not flushed, so clients keep their endpoint across syncs. Pure.
 */
export function planNftSync(existing: NftExisting, r: NftRuleset): NftSyncPlan {
  const head = headOf(r.family);
  const have = new Set(existing.chains);
  const { removed, staleSets } = staleObjects(existing, r);
  const added = r.chains.filter((c) => isServiceChain(c.name) && !have.has(c.name)).map((c) => c.name);
  const lines = [`add table ${head} { comment "rules for kube-proxy" ; }`];
  for (const c of r.containers) {
    lines.push(containerLine(c, head));
    if (!isAffinitySet(c.name)) lines.push(`flush ${c.kind} ${head} ${c.name}`);
  }
  for (const c of r.chains) lines.push(chainLine(c, head), `flush chain ${head} ${c.name}`);
  for (const c of removed) lines.push(`flush chain ${head} ${c}`);
  lines.push(...r.rules.map((x) => ruleLine(x, head)), ...r.elements.map((e) => elementLine(e, head)));
  // kube-proxy waits a second before deleting a flushed chain, for kernels before 6.2 that only
  // notice late that a map element no longer points at it; one transaction is fine on newer ones.
  for (const c of removed) lines.push(`delete chain ${head} ${c}`);
  for (const s of staleSets) lines.push(`delete set ${head} ${s}`);
  return { payload: `${lines.join('\n')}\n`, added, removed };
}

/** Per-service chains and affinity sets the node has that the ruleset no longer uses (kube-proxy lists both on every sync). */
function staleObjects(existing: NftExisting, r: NftRuleset): { removed: string[]; staleSets: string[] } {
  const chains = new Set(r.activeChains);
  const sets = new Set(r.activeSets);
  return {
    removed: existing.chains.filter((c) => isServiceChain(c) && !chains.has(c)),
    staleSets: existing.sets.filter((s) => isAffinitySet(s) && !sets.has(s)),
  };
}

const elementId = (e: NftElement) => `${e.container} ${e.key}`;

/**
 * A partial sync (upstream: tryPartialSync, no setupNFTables): the skeleton is left as the last
 * full sync made it; only the changed services' chains are declared, flushed and written (and
 * their affinity sets declared); the maps and sets get only the elements that differ from the
 * last sync's (kube-proxy keeps those in memory: here `before`, the ruleset of the last sync),
 * a changed value deleted and added again; stale chains are flushed and deleted, stale affinity
 * sets deleted. `before` and `after` come from the same node; `after` written for the changed services only. Pure.
 */
export function planNftPartialSync(existing: NftExisting, before: NftRuleset, after: NftRuleset): NftSyncPlan {
  const head = headOf(after.family);
  const had = new Set(before.activeChains);
  const { removed, staleSets } = staleObjects(existing, after);
  const lines: string[] = [];
  for (const c of after.containers) if (isAffinitySet(c.name)) lines.push(containerLine(c, head));
  for (const c of after.chains) if (isServiceChain(c.name)) lines.push(chainLine(c, head), `flush chain ${head} ${c.name}`);
  for (const c of removed) lines.push(`flush chain ${head} ${c}`);
  lines.push(...after.rules.filter((r) => isServiceChain(r.chain)).map((x) => ruleLine(x, head)));

  const old = new Map(before.elements.map((e) => [elementId(e), e]));
  const now = new Set(after.elements.map(elementId));
  for (const e of before.elements) if (!now.has(elementId(e))) lines.push(deleteElementLine(e, head));
  for (const e of after.elements) {
    const was = old.get(elementId(e));
    if (was && was.value === e.value) continue;
    if (was) lines.push(deleteElementLine(was, head));
    lines.push(elementLine(e, head));
  }
  for (const c of removed) lines.push(`delete chain ${head} ${c}`);
  for (const s of staleSets) lines.push(`delete set ${head} ${s}`);
  const added = after.activeChains.filter((c) => !had.has(c));
  return { payload: lines.length > 0 ? `${lines.join('\n')}\n` : '', added, removed };
}

const deleteElementLine = (e: NftElement, head: string) => `delete element ${head} ${e.container} { ${e.key} }`;
