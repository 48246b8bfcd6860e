import type { ProxyMode } from './events.js';

/**
 * The trace's own temporary rules, as text: pure. They mark for tracing only this connection's
 * packets that carry SYN (its first packet each way) or, for UDP, all of its datagrams. Before
 * any translation the connection is known exactly (client address and fixed source port); after
 * an SNAT with --random-fully its port is not known in advance, so packets to and from the pod
 * range are marked too, and the trace keeps only the passes of this connection afterwards.
 */

export interface TraceSpec {
  /** Unique per trace (it holds the source port): the iptables comment, the nft table name. */
  tag: string;
  proto: 'tcp' | 'udp';
  clientIP: string;
  clientPort: number;
  podCIDR: string;
  /** An IPv6 connection: the rules go in the ip6 family (ip6tables' raw table, an nft `table ip6`). */
  ipv6?: boolean;
}

/** The nft family the trace's rules (and kube-proxy's rules it meets) are in. */
export const nftFamily = (s: Pick<TraceSpec, 'ipv6'>) => (s.ipv6 ? 'ip6' : 'ip');

export const traceTag = (port: number) => `lab-trace-${port}`;

function matches(s: TraceSpec): { ipt: string; nft: string }[] {
  const synIpt = s.proto === 'tcp' ? ' -m tcp --tcp-flags SYN SYN' : '';
  const synNft = s.proto === 'tcp' ? ' tcp flags & syn == syn' : '';
  const p = s.proto;
  const ip = nftFamily(s);
  return [
    { ipt: `-p ${p} -s ${s.clientIP} -m ${p} --sport ${s.clientPort}${synIpt}`, nft: `${ip} saddr ${s.clientIP} ${p} sport ${s.clientPort}${synNft}` },
    { ipt: `-p ${p} -d ${s.clientIP} -m ${p} --dport ${s.clientPort}${synIpt}`, nft: `${ip} daddr ${s.clientIP} ${p} dport ${s.clientPort}${synNft}` },
    { ipt: `-p ${p} -d ${s.podCIDR}${synIpt}`, nft: `meta l4proto ${p} ${ip} daddr ${s.podCIDR}${synNft}` },
    { ipt: `-p ${p} -s ${s.podCIDR}${synIpt}`, nft: `meta l4proto ${p} ${ip} saddr ${s.podCIDR}${synNft}` },
  ];
}

export const IPTABLES_TRACE_CHAINS = ['PREROUTING', 'OUTPUT'] as const;

/** iptables-restore (ip6tables-restore for IPv6) --noflush input adding (or, with op '-D', deleting) the TRACE rules in the raw table. */
export function iptablesTraceRules(s: TraceSpec, op: '-A' | '-D'): string {
  const lines = IPTABLES_TRACE_CHAINS.flatMap((chain) => matches(s).map((m) => `${op} ${chain} ${m.ipt} -m comment --comment ${s.tag} -j TRACE`));
  return `*raw\n${lines.join('\n')}\nCOMMIT\n`;
}

export const iptablesTraceRuleCount = (s: TraceSpec) => IPTABLES_TRACE_CHAINS.length * matches(s).length;

/** nft -f input: a table of the trace's own, hooked before conntrack (raw priority - 1). */
export function nftTraceTable(s: TraceSpec): string {
  const f = nftFamily(s);
  const rules = (chain: string) => matches(s).map((m) => `  add rule ${f} ${s.tag} ${chain} ${m.nft} meta nftrace set 1`);
  return [
    `add table ${f} ${s.tag}`,
    `add chain ${f} ${s.tag} pre { type filter hook prerouting priority raw - 1; policy accept; }`,
    `add chain ${f} ${s.tag} out { type filter hook output priority raw - 1; policy accept; }`,
    ...rules('pre'),
    ...rules('out'),
    '',
  ].join('\n');
}

/**
 * Which monitor reads the trace: `nft monitor` in nftables mode, and in iptables mode for IPv6 as
 * well: xtables-monitor (v1.8.9 here) cannot print an ip6tables rule that matches a protocol
 * ("unsupported layer 4 protocol value") and quits at kube-proxy's first one, while nft prints
 * the same ip6tables-nft rules (iptables' chain names, nft's syntax for the matches).
 */
export const readsWithNft = (mode: ProxyMode, s: Pick<TraceSpec, 'ipv6'>) => mode === 'nftables' || s.ipv6 === true;

/** The table whose passes are the trace's own (not the lab's rules). */
export const ownTable = (mode: ProxyMode, s: TraceSpec) => (mode === 'nftables' ? s.tag : 'raw');
