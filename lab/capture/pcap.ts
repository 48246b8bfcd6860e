import { formatIPv6, joinHostPort } from '../util/ipv6.js';

/**
 * A small reader for the classic pcap files tcpdump writes with -w: Ethernet (or Linux
 * cooked) frames carrying IPv4 or IPv6 TCP, and VXLAN datagrams with the frame they carry decoded.
 * Enough to say, per packet, who talked to whom, in which frame, and inside which tunnel.
 */

export interface TcpPacket {
  /** Seconds since the epoch, with microsecond (or nanosecond) precision. */
  time: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** tcpdump-style flags: S, F, R, P, ., E, W, U */
  flags: string;
  seq: number;
  ack: number;
  payloadLength: number;
  /** The first bytes of the payload, as text (HTTP is readable). */
  payload: string;
  /** The IP packet's size on the wire below the link header (IPv4's total length; IPv6's payload length + 40). */
  ipLength?: number;
  /** The Ethernet frame's addresses (absent in a cooked capture). */
  srcMac?: string;
  dstMac?: string;
  /** The TCP maximum segment size option, on a SYN or SYN-ACK that carries one. */
  mss?: number;
  /** A UDP datagram (not VXLAN): flags are '' then. */
  udp?: true;
  /** A UDP datagram to a VXLAN port (flags '' then): its VNI and the frame it carries, decoded. */
  vxlan?: { vni: number; inner: TcpPacket };
}

/** UDP ports read as VXLAN: the Linux kernel's (and flannel's) 8472, and IANA's 4789. */
export const VXLAN_PORTS = [8472, 4789];

export const LINKTYPE_ETHERNET = 1;
const LINKTYPE_LINUX_SLL = 113;
const LINKTYPE_RAW = 101;

export class PcapError extends Error {}

export function parsePcap(buf: Buffer): TcpPacket[] {
  const packets: TcpPacket[] = [];
  for (const { frame, linktype, time } of pcapFrames(buf)) {
    const pkt = parseFrame(frame, linktype, time);
    if (pkt) packets.push(pkt);
  }
  return packets;
}

/** One record of a pcap file: the captured bytes, the file's link type, and when. */
export interface PcapFrame {
  frame: Buffer;
  linktype: number;
  time: number;
}

/** Every record of a classic pcap file (a truncated last record is left out). */
export function pcapFrames(buf: Buffer): PcapFrame[] {
  if (buf.length === 0) return []; // a capture stopped before its header was flushed saw nothing
  if (buf.length < 24) throw new PcapError('file is shorter than a pcap header');
  const magic = buf.readUInt32LE(0);
  let little: boolean;
  let nano = false;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) {
    little = true;
    nano = magic === 0xa1b23c4d;
  } else if (buf.readUInt32BE(0) === 0xa1b2c3d4 || buf.readUInt32BE(0) === 0xa1b23c4d) {
    little = false;
    nano = buf.readUInt32BE(0) === 0xa1b23c4d;
  } else {
    throw new PcapError(`not a pcap file (magic 0x${magic.toString(16)}); pcapng is not supported`);
  }
  const u32 = (o: number) => (little ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linktype = u32(20) & 0x0fffffff;
  const frames: PcapFrame[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const caplen = u32(off + 8);
    off += 16;
    if (off + caplen > buf.length) break; // truncated last record
    frames.push({ frame: buf.subarray(off, off + caplen), linktype, time: sec + frac / (nano ? 1e9 : 1e6) });
    off += caplen;
  }
  return frames;
}

export const macText = (b: Buffer, o: number) => [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');

/** One captured frame: its IP packet (TCP, or a VXLAN datagram), with the Ethernet addresses when it has them. */
function parseFrame(frame: Buffer, linktype: number, time: number): TcpPacket | undefined {
  const ip = ipPayload(frame, linktype);
  if (!ip) return undefined;
  const pkt = parseIpPacket(ip, time);
  if (pkt && linktype === LINKTYPE_ETHERNET) return { ...pkt, dstMac: macText(frame, 0), srcMac: macText(frame, 6) };
  return pkt;
}

function ipPayload(frame: Buffer, linktype: number): Buffer | undefined {
  if (linktype === LINKTYPE_RAW) return frame;
  let offset: number;
  let etherType: number;
  if (linktype === LINKTYPE_ETHERNET) {
    if (frame.length < 14) return undefined;
    etherType = frame.readUInt16BE(12);
    offset = 14;
    if (etherType === 0x8100 && frame.length >= 18) {
      etherType = frame.readUInt16BE(16);
      offset = 18;
    }
  } else if (linktype === LINKTYPE_LINUX_SLL) {
    if (frame.length < 16) return undefined;
    etherType = frame.readUInt16BE(14);
    offset = 16;
  } else {
    return undefined;
  }
  return etherType === 0x0800 || etherType === 0x86dd ? frame.subarray(offset) : undefined;
}

const ipText = (b: Buffer, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

/** 16 bytes of an IPv6 address in RFC 5952 form, as tcpdump and conntrack print it. */
export const ipv6Text = (b: Buffer, o: number) => formatIPv6(b.subarray(o, o + 16).reduce((v, x) => (v << 8n) | BigInt(x), 0n));

/** An IP packet's addresses, its transport header and what follows, and its size below the link header. */
interface IpView {
  src: string;
  dst: string;
  proto: number;
  l4: Buffer;
  /** The transport header and payload's length, as the IP header says. */
  l4Length: number;
  ipLength: number;
}

function parseIp(ip: Buffer): IpView | undefined {
  if (ip.length >= 20 && ip[0]! >> 4 === 4) {
    const ihl = (ip[0]! & 15) * 4;
    const ipLength = ip.readUInt16BE(2);
    return { src: ipText(ip, 12), dst: ipText(ip, 16), proto: ip[9]!, l4: ip.subarray(ihl), l4Length: ipLength - ihl, ipLength };
  }
  if (ip.length >= 40 && ip[0]! >> 4 === 6) return ipv6View(ip);
  return undefined;
}

/** Extension headers the kernel may put before TCP or UDP: hop-by-hop, routing, destination options (8-byte units), fragment (8 bytes). */
const IPV6_EXTENSIONS = new Set([0, 43, 44, 60]);

/** An IPv6 packet: the fixed header, then any extension headers, up to the transport header. */
export function ipv6View(ip: Buffer): IpView | undefined {
  let next = ip[6]!;
  let off = 40;
  while (IPV6_EXTENSIONS.has(next) && off + 8 <= ip.length) {
    const len = next === 44 ? 8 : (ip[off + 1]! + 1) * 8;
    next = ip[off]!;
    off += len;
  }
  if (off > ip.length) return undefined;
  const payloadLength = ip.readUInt16BE(4);
  return { src: ipv6Text(ip, 8), dst: ipv6Text(ip, 24), proto: next, l4: ip.subarray(off), l4Length: payloadLength + 40 - off, ipLength: payloadLength + 40 };
}

function parseIpPacket(ip: Buffer, time: number): TcpPacket | undefined {
  const v = parseIp(ip);
  if (!v) return undefined;
  if (v.proto === 17) return parseVxlan(v, time) ?? parseUdp(v, time);
  if (v.proto !== 6 || v.l4.length < 20) return undefined; // TCP, or UDP carrying VXLAN
  return parseTcp(v, time);
}

/** A UDP datagram to a VXLAN port whose header says a VNI follows (flag I, 0x08): the inner frame decoded like any other. */
function parseVxlan(v: IpView, time: number): TcpPacket | undefined {
  const udp = v.l4;
  if (udp.length < 8 + 8) return undefined;
  const dport = udp.readUInt16BE(2);
  const vx = udp.subarray(8);
  if (!VXLAN_PORTS.includes(dport) || !(vx[0]! & 0x08)) return undefined;
  const inner = parseFrame(vx.subarray(8), LINKTYPE_ETHERNET, time);
  if (!inner) return undefined;
  const vni = vx.readUIntBE(4, 3);
  return { time, src: v.src, dst: v.dst, sport: udp.readUInt16BE(0), dport, flags: '', seq: 0, ack: 0, payloadLength: udp.readUInt16BE(4) - 8, payload: '', ipLength: v.ipLength, vxlan: { vni, inner } };
}

/** Any other UDP datagram (a UDP Service's request or answer): flags '' and `udp` set, its payload's first bytes as text. */
function parseUdp(v: IpView, time: number): TcpPacket | undefined {
  const udp = v.l4;
  if (udp.length < 8) return undefined;
  const payloadLength = Math.max(0, udp.readUInt16BE(4) - 8);
  const payload = udp.subarray(8, 8 + Math.min(payloadLength, 200)).toString('latin1');
  return { time, src: v.src, dst: v.dst, sport: udp.readUInt16BE(0), dport: udp.readUInt16BE(2), flags: '', seq: 0, ack: 0, payloadLength, payload, ipLength: v.ipLength, udp: true };
}

/** The TCP options' MSS (kind 2, length 4), when the header carries one. */
function mssOption(tcp: Buffer, dataOffset: number): number | undefined {
  for (let o = 20; o + 1 < dataOffset && o + 1 < tcp.length; ) {
    const kind = tcp[o]!;
    if (kind === 0) return undefined;
    if (kind === 1) {
      o += 1;
      continue;
    }
    const len = tcp[o + 1]!;
    if (kind === 2 && len === 4 && o + 3 < tcp.length) return tcp.readUInt16BE(o + 2);
    if (len < 2) return undefined;
    o += len;
  }
  return undefined;
}

function parseTcp(v: IpView, time: number): TcpPacket {
  const tcp = v.l4;
  const dataOffset = (tcp[12]! >> 4) * 4;
  const f = tcp[13]!;
  const flags =
    (f & 0x02 ? 'S' : '') + (f & 0x01 ? 'F' : '') + (f & 0x04 ? 'R' : '') + (f & 0x08 ? 'P' : '') + (f & 0x20 ? 'U' : '') + (f & 0x40 ? 'E' : '') + (f & 0x80 ? 'W' : '') + (f & 0x10 ? '.' : '');
  const payloadLength = Math.max(0, v.l4Length - dataOffset);
  const captured = tcp.subarray(dataOffset, dataOffset + payloadLength);
  const mss = mssOption(tcp, dataOffset);
  return {
    ...(mss === undefined ? {} : { mss }),
    ipLength: v.ipLength,
    time,
    src: v.src,
    dst: v.dst,
    sport: tcp.readUInt16BE(0),
    dport: tcp.readUInt16BE(2),
    flags,
    seq: tcp.readUInt32BE(4),
    ack: tcp.readUInt32BE(8),
    payloadLength,
    payload: captured.toString('latin1'),
  };
}

/** One line in the spirit of tcpdump -n: "10.241.0.4:40001 > 10.240.0.4:32000 [S]" ("[fd00::4]:40001" for IPv6). */
export function describePacket(p: TcpPacket): string {
  if (p.vxlan) return `UDP ${joinHostPort(p.src, p.sport)} > ${joinHostPort(p.dst, p.dport)} VXLAN vni ${p.vxlan.vni} (${p.ipLength} bytes) carrying ${describePacket(p.vxlan.inner)}`;
  if (p.udp) return `UDP ${joinHostPort(p.src, p.sport)} > ${joinHostPort(p.dst, p.dport)} len ${p.payloadLength}`;
  return `${joinHostPort(p.src, p.sport)} > ${joinHostPort(p.dst, p.dport)} [${p.flags}]${p.payloadLength ? ` len ${p.payloadLength}` : ''}`;
}
