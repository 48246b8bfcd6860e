/**
 * DNS messages (RFC 1035), just enough for a cluster DNS server: read a query, decide the
 * answer from a table of service names, write the response. Pure: no sockets here, so every
 * byte can be tested without root.
 */

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const CLASS_IN = 1;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** CoreDNS's kubernetes plugin answers with a 5-second TTL by default. */
export const SERVICE_TTL = 5;

export interface Question {
  name: string;
  type: number;
  class: number;
}

export interface Answer {
  name: string;
  type: number;
  class: number;
  ttl: number;
  /** For A records: the IPv4 address as text. */
  address: string;
}

export interface Message {
  id: number;
  /** QR: false for a query, true for a response. */
  response: boolean;
  opcode: number;
  authoritative: boolean;
  truncated: boolean;
  recursionDesired: boolean;
  recursionAvailable: boolean;
  rcode: number;
  questions: Question[];
  answers: Answer[];
}

export class DnsFormatError extends Error {}

// ---------------------------------------------------------------------------------------------
// Reading

/** Read a (possibly compressed) domain name at `offset`; returns it and the offset after it. */
export function readName(buf: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let pos = offset;
  let next = -1;
  let jumps = 0;
  for (;;) {
    if (pos >= buf.length) throw new DnsFormatError('name runs past the end of the message');
    const len = buf[pos]!;
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) throw new DnsFormatError('truncated compression pointer');
      if (++jumps > 16) throw new DnsFormatError('compression pointer loop');
      if (next < 0) next = pos + 2;
      pos = ((len & 0x3f) << 8) | buf[pos + 1]!;
      continue;
    }
    if (len & 0xc0) throw new DnsFormatError(`unsupported label type 0x${len.toString(16)}`);
    if (len === 0) {
      if (next < 0) next = pos + 1;
      break;
    }
    if (pos + 1 + len > buf.length) throw new DnsFormatError('label runs past the end of the message');
    labels.push(buf.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  return { name: labels.join('.'), next };
}

/** Decode a whole message: header, questions, and the A records among the answers. */
export function decodeMessage(buf: Buffer): Message {
  if (buf.length < 12) throw new DnsFormatError('shorter than a DNS header');
  const flags = buf.readUInt16BE(2);
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  const msg: Message = {
    id: buf.readUInt16BE(0),
    response: Boolean(flags & 0x8000),
    opcode: (flags >> 11) & 0xf,
    authoritative: Boolean(flags & 0x0400),
    truncated: Boolean(flags & 0x0200),
    recursionDesired: Boolean(flags & 0x0100),
    recursionAvailable: Boolean(flags & 0x0080),
    rcode: flags & 0xf,
    questions: [],
    answers: [],
  };
  let pos = 12;
  for (let i = 0; i < qd; i++) {
    const { name, next } = readName(buf, pos);
    if (next + 4 > buf.length) throw new DnsFormatError('question runs past the end of the message');
    msg.questions.push({ name, type: buf.readUInt16BE(next), class: buf.readUInt16BE(next + 2) });
    pos = next + 4;
  }
  for (let i = 0; i < an; i++) {
    const { name, next } = readName(buf, pos);
    if (next + 10 > buf.length) throw new DnsFormatError('record runs past the end of the message');
    const type = buf.readUInt16BE(next);
    const rdlength = buf.readUInt16BE(next + 8);
    const rdata = next + 10;
    if (rdata + rdlength > buf.length) throw new DnsFormatError('record data runs past the end of the message');
    if (type === TYPE.A && rdlength === 4) {
      msg.answers.push({ name, type, class: buf.readUInt16BE(next + 2), ttl: buf.readUInt32BE(next + 4), address: [...buf.subarray(rdata, rdata + 4)].join('.') });
    }
    pos = rdata + rdlength;
  }
  return msg;
}

// ---------------------------------------------------------------------------------------------
// Writing

export function encodeName(name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, 'latin1');
    if (bytes.length > 63) throw new DnsFormatError(`label "${label}" is longer than 63 bytes`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > 255) throw new DnsFormatError('name is longer than 255 bytes');
  return out;
}

function header(m: Pick<Message, 'id' | 'response' | 'opcode' | 'authoritative' | 'truncated' | 'recursionDesired' | 'recursionAvailable' | 'rcode'>, qd: number, an: number): Buffer {
  const h = Buffer.alloc(12);
  const flags =
    (m.response ? 0x8000 : 0) |
    ((m.opcode & 0xf) << 11) |
    (m.authoritative ? 0x0400 : 0) |
    (m.truncated ? 0x0200 : 0) |
    (m.recursionDesired ? 0x0100 : 0) |
    (m.recursionAvailable ? 0x0080 : 0) |
    (m.rcode & 0xf);
  h.writeUInt16BE(m.id & 0xffff, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  return h;
}

function question(q: Question): Buffer {
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(q.type, 0);
  tail.writeUInt16BE(q.class, 2);
  return Buffer.concat([encodeName(q.name), tail]);
}

/** A query as a stub resolver sends it: one question, recursion desired. */
export function encodeQuery(id: number, name: string, type: number = TYPE.A): Buffer {
  const q = { id, response: false, opcode: 0, authoritative: false, truncated: false, recursionDesired: true, recursionAvailable: false, rcode: 0 };
  return Buffer.concat([header(q, 1, 0), question({ name, type, class: CLASS_IN })]);
}

/**
 * A response. Answers whose name equals the first question's point back at it with a
 * compression pointer (0xC00C), as servers usually write them.
 */
export function encodeResponse(m: Message): Buffer {
  const parts = [header({ ...m, response: true }, m.questions.length, m.answers.length), ...m.questions.map(question)];
  const first = m.questions[0]?.name.toLowerCase();
  for (const a of m.answers) {
    const octets = a.address.split('.').map(Number);
    if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) throw new DnsFormatError(`${a.address} is not an IPv4 address`);
    const name = first !== undefined && a.name.toLowerCase() === first ? Buffer.from([0xc0, 0x0c]) : encodeName(a.name);
    const fixed = Buffer.alloc(10);
    fixed.writeUInt16BE(a.type, 0);
    fixed.writeUInt16BE(a.class, 2);
    fixed.writeUInt32BE(a.ttl, 4);
    fixed.writeUInt16BE(4, 8);
    parts.push(name, fixed, Buffer.from(octets));
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// Deciding the answer

export interface Zone {
  /** The cluster domain, e.g. cluster.local. */
  domain: string;
  /** Fully qualified service name (lower case, no trailing dot) → ClusterIP. */
  records: Record<string, string>;
}

const normal = (name: string) => name.toLowerCase().replace(/\.$/, '');

/**
 * What cluster DNS says to one question:
 * - a service name of the zone: its ClusterIP for A (and ANY); no data (NOERROR, no answer) for
 *   other types such as AAAA, so a resolver asking both A and AAAA gets the A record;
 * - a name that is a proper suffix of a service name (default.svc.cluster.local): it exists
 *   but holds nothing, so NOERROR with no answer;
 * - any other name inside the cluster domain: NXDOMAIN;
 * - a name outside it: REFUSED. CoreDNS would forward it upstream; the lab has no upstream and
 *   will not pretend the name does not exist.
 */
export function resolveQuestion(q: Question, zone: Zone): { rcode: number; answers: Answer[] } {
  const name = normal(q.name);
  const domain = normal(zone.domain);
  if (name !== domain && !name.endsWith(`.${domain}`)) return { rcode: RCODE.REFUSED, answers: [] };
  const ip = zone.records[name];
  if (ip !== undefined) {
    const wantsA = q.class === CLASS_IN && (q.type === TYPE.A || q.type === TYPE.ANY);
    return { rcode: RCODE.NOERROR, answers: wantsA ? [{ name: q.name, type: TYPE.A, class: CLASS_IN, ttl: SERVICE_TTL, address: ip }] : [] };
  }
  const interior = name === domain || Object.keys(zone.records).some((r) => r.endsWith(`.${name}`));
  return { rcode: interior ? RCODE.NOERROR : RCODE.NXDOMAIN, answers: [] };
}

/**
 * The whole exchange: query bytes in, response bytes out (undefined when the bytes are not
 * even a DNS header, or are themselves a response: those are dropped, as a server does).
 */
export function answerQuery(query: Buffer, zone: Zone): Buffer | undefined {
  if (query.length < 12) return undefined;
  const id = query.readUInt16BE(0);
  const flags = query.readUInt16BE(2);
  if (flags & 0x8000) return undefined;
  const base: Message = {
    id,
    response: true,
    opcode: (flags >> 11) & 0xf,
    authoritative: false,
    truncated: false,
    recursionDesired: Boolean(flags & 0x0100),
    recursionAvailable: false,
    rcode: RCODE.NOERROR,
    questions: [],
    answers: [],
  };
  if (base.opcode !== 0) return encodeResponse({ ...base, rcode: RCODE.NOTIMP });
  let msg: Message;
  try {
    msg = decodeMessage(query);
  } catch {
    return encodeResponse({ ...base, rcode: RCODE.FORMERR });
  }
  if (msg.questions.length !== 1) return encodeResponse({ ...base, rcode: RCODE.FORMERR });
  const q = msg.questions[0]!;
  const { rcode, answers } = resolveQuestion(q, zone);
  return encodeResponse({ ...base, authoritative: rcode !== RCODE.REFUSED, rcode, questions: [q], answers });
}
