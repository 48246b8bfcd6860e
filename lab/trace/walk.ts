import type { ConntrackEntry } from '../kernel/conntrack.js';
import { joinHostPort, splitHostPort } from '../util/ipv6.js';
import { packetInFlow, type Flow } from '../verify/flows.js';
import type { PacketView, TracePass, TraceStep } from './events.js';

/**
 * From raw trace passes to the walk a learner reads: per namespace, the connection's first
 * packet each way, the chains and rules it met in order, and its addresses before and after
 * each translation. Pure.
 */

export interface WalkRule {
  table: string;
  chain: string;
  /** The rule's matches and target, comment left out. */
  rule: string;
  comment?: string;
  verdict: string;
  target?: string;
  /** What this rule did to the addresses, when it translated them. */
  nat?: string;
}

export interface WalkHook {
  /** e.g. "nat PREROUTING" */
  hook: string;
  packet: string;
  rules: WalkRule[];
  /** The policy verdict of the base chain, when no rule decided. */
  policy?: string;
  /** What happened here without a rule (conntrack's translation of a reply). */
  note?: string;
}

export interface WalkHop {
  host: string;
  direction: 'request' | 'reply';
  /** The packet as it entered this namespace. */
  packet: string;
  iif?: string;
  oif?: string;
  hooks: WalkHook[];
  /** Translations the trace cannot show (POSTROUTING's SNAT, conntrack's reply de-NAT), from conntrack. */
  notes: string[];
  /** ACCEPT (went on), DROP or REJECT (ended here). */
  fate: string;
  /** For REJECT: what the namespace sent back to the packet's source. */
  rejectWith?: string;
  /** The same packet seen again (retransmissions). */
  repeats: number;
}

const tuple = (p: Pick<PacketView, 'src' | 'sport' | 'dst' | 'dport'>) => `${joinHostPort(p.src, p.sport)} > ${joinHostPort(p.dst, p.dport)}`;
export const describeView = (p: PacketView) => `${tuple(p)}${p.flags ? ` [${p.flags}]` : ''}`;

/** A pass through the trace's own table (nft) or its own TRACE rule (iptables): where a packet enters a namespace. */
export const isOwnPass = (pass: TracePass, ownTable: string) => pass.steps.length === 0 || pass.steps.every((s) => s.table === ownTable || (s.table === 'raw' && (s.kind === 'policy' || /\bTRACE\b/.test(s.rule ?? ''))));

function cleanRule(step: TraceStep): { rule: string; comment?: string } {
  let rule = step.rule ?? '';
  const comment = /-m comment --comment ("[^"]*"|\S+)/.exec(rule)?.[1]?.replace(/^"|"$/g, '') ?? /comment "([^"]*)"/.exec(rule)?.[1];
  rule = rule
    .replace(/-m comment --comment ("[^"]*"|\S+)\s*/, '')
    .replace(/comment "[^"]*"\s*/, '')
    .replace(/-m (tcp|udp)\s+/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  return { rule, comment };
}

/**
 * What a REJECT rule sends back, from its text; undefined for a rule that does not reject. The
 * kernel's trace reports a REJECT as the drop it ends in (NF_DROP): the rule's text tells them apart.
 */
export function rejectReply(rule: string): string | undefined {
  const ipt = /-j REJECT(?: --reject-with (\S+))?/.exec(rule);
  if (ipt) return ipt[1] === 'tcp-reset' ? 'a TCP reset' : `ICMP ${ipt[1] ?? 'icmp-port-unreachable'}`.replace('ICMP icmp-', 'ICMP ');
  const nft = /(?:^|\s)reject(?: with (tcp reset|icmpx? (?:type )?\S+))?(?:\s|$)/.exec(rule);
  if (!nft) return undefined;
  if (nft[1] === 'tcp reset') return 'a TCP reset';
  return `ICMP ${nft[1]?.replace(/^icmpx? (type )?/, '') ?? 'port-unreachable'}`;
}

/** Split a namespace's passes into packets: each starts with a pass through the trace's own rules. */
function packetsOf(passes: TracePass[], ownTable: string): TracePass[][] {
  const out: TracePass[][] = [];
  for (const p of passes) {
    if (isOwnPass(p, ownTable) || out.length === 0) out.push([p]);
    else out.at(-1)!.push(p);
  }
  return out;
}

/** Is this packet going toward the server (request) or back (reply)? */
function directionOf(p: PacketView, flow: Flow): 'request' | 'reply' {
  const { ip: cip, port: cport } = splitHostPort(flow.client);
  if (p.src === cip && p.sport === cport) return 'request';
  const e = flow.conntrack?.entry;
  if (e && p.src === e.reply.dst && p.sport === e.reply.dport) return 'request';
  return 'reply';
}

/**
 * Build the walk of one connection from every namespace's passes. `passes` holds each
 * namespace's passes in arrival order; hops come out ordered by when they were seen.
 */
export function buildWalk(passes: Record<string, TracePass[]>, flow: Flow, ownTable: string): WalkHop[] {
  const entry: ConntrackEntry | undefined = flow.conntrack?.entry;
  const hops: (WalkHop & { seen: number; ttl: number })[] = [];
  for (const [host, list] of Object.entries(passes)) {
    const mine = list.filter((p) => packetInFlow(p.packet, flow));
    // One hop per direction and entering addresses (a router sees the request twice: before
    // and after node1's NAT); the same packet again is a retransmission.
    const byHop = new Map<string, { direction: 'request' | 'reply'; pkts: TracePass[][] }>();
    for (const pkt of packetsOf(mine, ownTable)) {
      const direction = directionOf(pkt[0]!.packet, flow);
      const key = `${direction} ${tuple(pkt[0]!.packet)}`;
      const hop = byHop.get(key) ?? { direction, pkts: [] };
      hop.pkts.push(pkt);
      byHop.set(key, hop);
    }
    for (const { direction, pkts } of byHop.values()) {
      const first = pkts[0]!;
      const hooks: WalkHook[] = [];
      let fate = 'ACCEPT';
      let rejectWith: string | undefined;
      const enter = first[0]!.packet;
      let previous = enter;
      for (const pass of first) {
        const steps = pass.steps.filter((s) => s.table !== ownTable && !(s.table === 'raw' && (/\bTRACE\b/.test(s.rule ?? '') || s.kind === 'policy')));
        if (steps.length === 0) {
          previous = pass.packet;
          continue;
        }
        const base = steps[0]!;
        const hook: WalkHook = { hook: `${base.table} ${base.chain}`, packet: describeView(pass.packet), rules: [] };
        // A change of addresses since the last hook: the previous hook's NAT rule did it.
        if (tuple(pass.packet) !== tuple(previous)) {
          const last = [...hooks].reverse().flatMap((h) => [...h.rules].reverse()).find((r) => /DNAT|dnat|SNAT|snat|REDIRECT|redirect/.test(r.rule));
          const what = `now ${tuple(pass.packet)}`;
          if (last && !last.nat) last.nat = what;
          else if (!last) hooks.push({ hook: 'conntrack', packet: describeView(pass.packet), rules: [], note: `no rule: conntrack translated this ${direction}, ${what}` });
        }
        for (const s of steps) {
          if (s.kind === 'policy') hook.policy = s.verdict;
          const sends = s.kind === 'rule' && s.verdict === 'DROP' ? rejectReply(s.rule ?? '') : undefined;
          const verdict = sends ? 'REJECT' : s.verdict;
          if (s.kind === 'rule' && s.rule !== undefined) hook.rules.push({ table: s.table, chain: s.chain, ...cleanRule(s), verdict, target: s.target });
          if (verdict === 'DROP' || verdict === 'REJECT') [fate, rejectWith] = [verdict, sends];
        }
        hooks.push(hook);
        previous = pass.packet;
      }
      const notes: string[] = [];
      if (entry && flow.conntrack?.node === host) {
        const snat = entry.reply.dst !== entry.original.src || entry.reply.dport !== entry.original.sport;
        if (direction === 'request' && snat) notes.push(`the source is rewritten as it leaves (POSTROUTING, after the trace's last look): ${joinHostPort(entry.reply.dst, entry.reply.dport)} > ${joinHostPort(entry.reply.src, entry.reply.sport)}, as conntrack recorded`);
        if (direction === 'reply') notes.push(`conntrack, not a rule, translates the reply back: it leaves as ${joinHostPort(entry.original.dst, entry.original.dport)} > ${joinHostPort(entry.original.src, entry.original.sport)}`);
      }
      if (hooks.length === 0) notes.push('no rule here: forwarded as it came');
      hops.push({ host, direction, packet: describeView(enter), iif: enter.iif, oif: first.at(-1)!.packet.oif, hooks, notes, fate, ...(rejectWith ? { rejectWith } : {}), repeats: pkts.length - 1, ttl: enter.ttl ?? 0, seen: first[0]!.at });
    }
  }
  // Requests first, then replies; along each, the TTL the packet arrived with falls by one per
  // router, so it orders the hops as the wire did (arrival time breaks ties).
  const rank = (h: { direction: string }) => (h.direction === 'request' ? 0 : 1);
  return hops.sort((a, b) => rank(a) - rank(b) || b.ttl - a.ttl || a.seen - b.seen).map(({ seen: _seen, ttl: _ttl, ...h }) => h);
}
