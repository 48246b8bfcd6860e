import { LINKTYPE_ETHERNET, macText, pcapFrames } from './pcap.js';

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
}

const ETH_P_ARP = 0x0806;
const ipText = (b: Buffer, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

export function parseArpPcap(buf: Buffer): ArpPacket[] {
  return pcapFrames(buf).flatMap(({ frame, linktype, time }) => {
    const p = linktype === LINKTYPE_ETHERNET ? parseArpFrame(frame, time) : undefined;
    return p ? [p] : [];
  });
}

/** An Ethernet frame carrying IPv4-over-Ethernet ARP, decoded; undefined for any other frame. */
export function parseArpFrame(f: Buffer, time = 0): ArpPacket | undefined {
  if (f.length < 42 || f.readUInt16BE(12) !== ETH_P_ARP) return undefined;
  if (f.readUInt16BE(14) !== 1 || f.readUInt16BE(16) !== 0x0800 || f[18] !== 6 || f[19] !== 4) return undefined;
  const op = f.readUInt16BE(20);
  if (op !== 1 && op !== 2) return undefined;
  return { time, op: op === 1 ? 'who-has' : 'is-at', dstMac: macText(f, 0), srcMac: macText(f, 6), senderMac: macText(f, 22), senderIp: ipText(f, 28), targetMac: macText(f, 32), targetIp: ipText(f, 38) };
}

/** A gratuitous ARP: the sender announces its own IP (RFC 5227's announcement), as a request or a reply. */
export const isGratuitous = (p: ArpPacket) => p.senderIp === p.targetIp;

/** In tcpdump's words: "who-has 10.240.0.100 tell 10.240.0.1 (from 02:..)", "10.240.0.100 is-at 02:..". */
export function describeArp(p: ArpPacket): string {
  if (isGratuitous(p)) return `gratuitous ARP ${p.senderIp} is-at ${p.senderMac} (${p.op === 'who-has' ? 'request' : 'reply'} to ${p.dstMac})`;
  return p.op === 'who-has' ? `who-has ${p.targetIp} tell ${p.senderIp} (${p.senderMac})` : `${p.senderIp} is-at ${p.senderMac} (to ${p.dstMac})`;
}
