import { ipv6Text, ipv6View, LINKTYPE_ETHERNET, macText, pcapFrames } from './pcap.js';

/**
 * ARP over Ethernet read from a pcap (tcpdump -w with `arp` in its filter): who asked for which
 * IP, who answered with which MAC, and the gratuitous announcements (sender IP = target IP) a
 * MetalLB layer-2 speaker sends when it takes an IP over.
 */
export interface ArpPacket {
  time: number;
  /** who-has: a request (op 1); is-at: a reply (op 2). */
  op: 'who-has' | 'is-at';
  /** The Ethernet frame's addresses. */
  srcMac: string;
  dstMac: string;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
  /**
   * IPv6's neighbour discovery (ICMPv6, RFC 4861) in the same words: a neighbour solicitation is a
   * who-has (sender: its source address and link-layer option, target: the address asked for), a
   * neighbour advertisement an is-at (sender: the target address and its link-layer option, target
   * MAC: the frame's destination). `solicited`: the advertisement's S flag.
   */
  ndp?: { solicited?: boolean };
}

const ETH_P_ARP = 0x0806;
const ipText = (b: Buffer, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

export function parseArpPcap(buf: Buffer): ArpPacket[] {
  return pcapFrames(buf).flatMap(({ frame, linktype, time }) => {
    const p = linktype === LINKTYPE_ETHERNET ? (parseArpFrame(frame, time) ?? parseNdpFrame(frame, time)) : undefined;
    return p ? [p] : [];
  });
}

const ETH_P_IPV6 = 0x86dd;
const ICMPV6 = 58;
const [NEIGHBOR_SOLICITATION, NEIGHBOR_ADVERTISEMENT] = [135, 136];
/** NDP options: source link-layer address (1) on a solicitation, target link-layer address (2) on an advertisement. */
const [SOURCE_LLA, TARGET_LLA] = [1, 2];

/** The link-layer address option of an NDP message (options from byte 24 of the ICMPv6 message), if it carries one. */
function llaOption(icmp: Buffer, kind: number): string | undefined {
  for (let o = 24; o + 8 <= icmp.length; ) {
    const len = icmp[o + 1]! * 8;
    if (len === 0) return undefined;
    if (icmp[o] === kind && len >= 8) return macText(icmp, o + 2);
    o += len;
  }
  return undefined;
}

/** An Ethernet frame carrying an IPv6 neighbour solicitation or advertisement, in ARP's words; undefined for any other frame. */
export function parseNdpFrame(f: Buffer, time = 0): ArpPacket | undefined {
  if (f.length < 14 + 40 + 24 || f.readUInt16BE(12) !== ETH_P_IPV6) return undefined;
  const ip = ipv6View(f.subarray(14));
  if (!ip || ip.proto !== ICMPV6 || ip.l4.length < 24) return undefined;
  const icmp = ip.l4;
  const [dstMac, srcMac] = [macText(f, 0), macText(f, 6)];
  const target = ipv6Text(icmp, 8);
  if (icmp[0] === NEIGHBOR_SOLICITATION) {
    return { time, op: 'who-has', dstMac, srcMac, senderMac: llaOption(icmp, SOURCE_LLA) ?? srcMac, senderIp: ip.src, targetMac: '00:00:00:00:00:00', targetIp: target, ndp: {} };
  }
  if (icmp[0] === NEIGHBOR_ADVERTISEMENT) {
    return { time, op: 'is-at', dstMac, srcMac, senderMac: llaOption(icmp, TARGET_LLA) ?? srcMac, senderIp: target, targetMac: dstMac, targetIp: ip.dst, ndp: { solicited: Boolean(icmp[4]! & 0x40) } };
  }
  return undefined;
}

/** An Ethernet frame carrying IPv4-over-Ethernet ARP, decoded; undefined for any other frame. */
export function parseArpFrame(f: Buffer, time = 0): ArpPacket | undefined {
  if (f.length < 42 || f.readUInt16BE(12) !== ETH_P_ARP) return undefined;
  if (f.readUInt16BE(14) !== 1 || f.readUInt16BE(16) !== 0x0800 || f[18] !== 6 || f[19] !== 4) return undefined;
  const op = f.readUInt16BE(20);
  if (op !== 1 && op !== 2) return undefined;
  return { time, op: op === 1 ? 'who-has' : 'is-at', dstMac: macText(f, 0), srcMac: macText(f, 6), senderMac: macText(f, 22), senderIp: ipText(f, 28), targetMac: macText(f, 32), targetIp: ipText(f, 38) };
}

/**
 * A gratuitous ARP: the sender announces its own IP (RFC 5227's announcement), as a request or a
 * reply. IPv6's counterpart is an unsolicited neighbour advertisement (S flag clear).
 */
export const isGratuitous = (p: ArpPacket) => (p.ndp ? p.op === 'is-at' && !p.ndp.solicited : p.senderIp === p.targetIp);

/** In tcpdump's words: "who-has 10.240.0.100 tell 10.240.0.1 (from 02:..)", "10.240.0.100 is-at 02:..". */
export function describeArp(p: ArpPacket): string {
  if (p.ndp) return describeNdp(p);
  if (isGratuitous(p)) return `gratuitous ARP ${p.senderIp} is-at ${p.senderMac} (${p.op === 'who-has' ? 'request' : 'reply'} to ${p.dstMac})`;
  return p.op === 'who-has' ? `who-has ${p.targetIp} tell ${p.senderIp} (${p.senderMac})` : `${p.senderIp} is-at ${p.senderMac} (to ${p.dstMac})`;
}

/** In tcpdump's words: "neighbor solicitation, who has fd00:10:240::4 (from fd00:10:240::1, 02:..)", "neighbor advertisement, tgt is fd00:10:240::4 is-at 02:.. (to 02:..)". */
function describeNdp(p: ArpPacket): string {
  if (p.op === 'who-has') return `neighbor solicitation, who has ${p.targetIp} (from ${p.senderIp}, ${p.senderMac})`;
  return `${isGratuitous(p) ? 'unsolicited ' : ''}neighbor advertisement, tgt is ${p.senderIp} is-at ${p.senderMac} (to ${p.dstMac})`;
}
