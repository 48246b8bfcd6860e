import type { ConntrackEntry } from '../kernel/conntrack.js';
import type { TcpPacket } from '../capture/pcap.js';
import { joinHostPort, splitHostPort } from '../util/ipv6.js';
import { patternWords } from './outcome.js';

/** What the pod's workload answered. */
export interface PodAnswer {
  pod: string;
  node: string;
  podIP: string;
  port: number;
  client: string;
}

/** One request the lab sent, and everything learned about it afterwards. */
export interface Flow {
  index: number;
  group: string;
  from: string;
  /** ip:port the request left from. */
  client: string;
  /** ip:port it was sent to (after any DNS lookup). */
  target: string;
  answer?: PodAnswer;
  /** A UDP exchange (lab trace --proto udp): what came back, if anything. */
  datagram?: { reply: string };
  error?: string;
  /** The node whose conntrack table holds this connection, and the entry. */
  conntrack?: { node: string; entry: ConntrackEntry };
}

export interface Endpoint {
  ip: string;
  port: number;
}

/** "10.240.0.4:32000" or "[fd00:10:240::4]:32000" into address and port. */
export const splitAddress = (text: string): Endpoint => splitHostPort(text);

/** Traffic to an IPv6 address ("[fd00:10:240::4]:32000") is sent from the sender's IPv6 address. */
export const isIPv6Traffic = (to: string) => to.startsWith('[');

/** The address a client or pod sends this traffic from: its IPv6 one for an IPv6 destination. */
export const senderAddress = (host: { address: string; address6?: string }, to: string) => (isIPv6Traffic(to) ? host.address6 : host.address);

/** Flow variables: $client, $target, $pod, $snat. */
export function flowVariables(flow: Flow): Record<string, string | undefined> {
  const reply = flow.conntrack?.entry.reply;
  return {
    client: flow.client,
    target: flow.target,
    pod: reply ? joinHostPort(reply.src, reply.sport) : flow.answer ? joinHostPort(flow.answer.podIP, flow.answer.port) : undefined,
    snat: reply ? joinHostPort(reply.dst, reply.dport) : flow.answer?.client,
  };
}

export interface AddressPattern {
  ip: string;
  /** undefined: any port */
  port?: number;
}

/**
 * Resolve "$snat.ip:*", "10.240.0.4:32000", "$pod"… against a flow's variables. IPv6 is written
 * as kube-proxy and curl write it: "[fd00:10:240::4]:32000", "[fd00:10:240::4]:*", or the bare
 * address "fd00:10:240::4" (any port).
 */
export function resolvePattern(pattern: string, vars: Record<string, string | undefined>): AddressPattern | undefined {
  const m = /^\$([a-z]+)(\.ip)?(:\*)?$/.exec(pattern);
  if (m) {
    const value = vars[m[1]!];
    if (!value) return undefined;
    const addr = splitAddress(value);
    return m[2] || m[3] ? { ip: addr.ip } : addr;
  }
  const v6 = /^\[([^\]]+)\](?::(\d+|\*))?$/.exec(pattern);
  if (v6) return { ip: v6[1]!, port: v6[2] === undefined || v6[2] === '*' ? undefined : Number(v6[2]) };
  if (pattern.split(':').length > 2) return { ip: pattern };
  const [ip, port] = pattern.split(':');
  return { ip: ip!, port: port === undefined || port === '*' ? undefined : Number(port) };
}

/** An address pattern as the report prints it; one no request resolved, in words ("the SNAT address"). */
export function formatPattern(p: AddressPattern | undefined, raw: string): string {
  if (!p) return patternWords(raw);
  return joinHostPort(p.ip, p.port ?? '*');
}

export const addressMatches = (p: AddressPattern, ip: string, port: number) => p.ip === ip && (p.port === undefined || p.port === port);

/** Does a captured packet belong to this flow, on either side of any translation? */
export function packetInFlow(pkt: Pick<TcpPacket, 'src' | 'sport' | 'dst' | 'dport'>, flow: Flow): boolean {
  const vars = flowVariables(flow);
  const pairs: [string | undefined, string | undefined][] = [
    [vars.client, vars.target],
    [vars.snat, vars.pod],
    [vars.client, vars.pod],
  ];
  const a = joinHostPort(pkt.src, pkt.sport);
  const b = joinHostPort(pkt.dst, pkt.dport);
  return pairs.some(([x, y]) => x !== undefined && y !== undefined && ((a === x && b === y) || (a === y && b === x)));
}
