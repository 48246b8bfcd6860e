import type { ConntrackEntry } from '../kernel/conntrack.js';
import type { TcpPacket } from '../capture/pcap.js';
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

export const splitAddress = (text: string): Endpoint => {
  const i = text.lastIndexOf(':');
  return { ip: text.slice(0, i), port: Number(text.slice(i + 1)) };
};

/** Flow variables: $client, $target, $pod, $snat. */
export function flowVariables(flow: Flow): Record<string, string | undefined> {
  const reply = flow.conntrack?.entry.reply;
  return {
    client: flow.client,
    target: flow.target,
    pod: reply ? `${reply.src}:${reply.sport}` : flow.answer ? `${flow.answer.podIP}:${flow.answer.port}` : undefined,
    snat: reply ? `${reply.dst}:${reply.dport}` : flow.answer?.client,
  };
}

export interface AddressPattern {
  ip: string;
  /** undefined: any port */
  port?: number;
}

/** Resolve "$snat.ip:*", "10.240.0.4:32000", "$pod"… against a flow's variables. */
export function resolvePattern(pattern: string, vars: Record<string, string | undefined>): AddressPattern | undefined {
  const m = /^\$([a-z]+)(\.ip)?(:\*)?$/.exec(pattern);
  if (m) {
    const value = vars[m[1]!];
    if (!value) return undefined;
    const addr = splitAddress(value);
    return m[2] || m[3] ? { ip: addr.ip } : addr;
  }
  const [ip, port] = pattern.split(':');
  return { ip: ip!, port: port === undefined || port === '*' ? undefined : Number(port) };
}

/** An address pattern as the report prints it; one no request resolved, in words ("the SNAT address"). */
export function formatPattern(p: AddressPattern | undefined, raw: string): string {
  if (!p) return patternWords(raw);
  return p.port === undefined ? `${p.ip}:*` : `${p.ip}:${p.port}`;
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
  const a = `${pkt.src}:${pkt.sport}`;
  const b = `${pkt.dst}:${pkt.dport}`;
  return pairs.some(([x, y]) => x !== undefined && y !== undefined && ((a === x && b === y) || (a === y && b === x)));
}
