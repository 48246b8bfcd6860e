/**
 * A small reader for the classic pcap files tcpdump writes with -w: Ethernet (or Linux
 * cooked) frames carrying IPv4/TCP. Enough to say, per packet, who talked to whom.
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
}

const LINKTYPE_ETHERNET = 1;
const LINKTYPE_LINUX_SLL = 113;
const LINKTYPE_RAW = 101;

export class PcapError extends Error {}

export function parsePcap(buf: Buffer): TcpPacket[] {
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
  const packets: TcpPacket[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const caplen = u32(off + 8);
    off += 16;
    if (off + caplen > buf.length) break; // truncated last record
    const frame = buf.subarray(off, off + caplen);
    off += caplen;
    const ip = ipPayload(frame, linktype);
    if (!ip) continue;
    const pkt = parseIPv4Tcp(ip, sec + frac / (nano ? 1e9 : 1e6));
    if (pkt) packets.push(pkt);
  }
  return packets;
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
  return etherType === 0x0800 ? frame.subarray(offset) : undefined;
}

const ipText = (b: Buffer, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

function parseIPv4Tcp(ip: Buffer, time: number): TcpPacket | undefined {
  if (ip.length < 20 || ip[0]! >> 4 !== 4) return undefined;
  const ihl = (ip[0]! & 15) * 4;
  const totalLength = ip.readUInt16BE(2);
  if (ip[9] !== 6 || ip.length < ihl + 20) return undefined; // TCP only
  const tcp = ip.subarray(ihl);
  const dataOffset = (tcp[12]! >> 4) * 4;
  const f = tcp[13]!;
  const flags =
    (f & 0x02 ? 'S' : '') + (f & 0x01 ? 'F' : '') + (f & 0x04 ? 'R' : '') + (f & 0x08 ? 'P' : '') + (f & 0x20 ? 'U' : '') + (f & 0x40 ? 'E' : '') + (f & 0x80 ? 'W' : '') + (f & 0x10 ? '.' : '');
  const payloadLength = Math.max(0, totalLength - ihl - dataOffset);
  const captured = tcp.subarray(dataOffset, dataOffset + payloadLength);
  return {
    time,
    src: ipText(ip, 12),
    dst: ipText(ip, 16),
    sport: tcp.readUInt16BE(0),
    dport: tcp.readUInt16BE(2),
    flags,
    seq: tcp.readUInt32BE(4),
    ack: tcp.readUInt32BE(8),
    payloadLength,
    payload: captured.toString('latin1'),
  };
}

/** One line in the spirit of tcpdump -n: "10.241.0.4.40001 > 10.240.0.4.32000: Flags [S]". */
export function describePacket(p: TcpPacket): string {
  return `${p.src}:${p.sport} > ${p.dst}:${p.dport} [${p.flags}]${p.payloadLength ? ` len ${p.payloadLength}` : ''}`;
}
