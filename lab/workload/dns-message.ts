/**
 * Cluster DNS's answers: the lab's own table of service names (<svc>.<ns>.svc.<domain> →
 * ClusterIP) and what it says to each question. The wire format (RFC 1035: header, names,
 * compression, records) is dns-packet's. Pure: no sockets here, so every answer can be tested
 * without root.
 */
import dnsPacket, { type Answer as WireAnswer, type DecodedPacket, type Question as WireQuestion } from 'dns-packet';

/** The response codes cluster DNS uses (RFC 1035 4.1.1). */
const RCODE = { NOERROR: 0, FORMERR: 1, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
type Rcode = keyof typeof RCODE;

/** CoreDNS's kubernetes plugin answers with a 5-second TTL by default. */
export const SERVICE_TTL = 5;

export interface Zone {
  /** The cluster domain, e.g. cluster.local. */
  domain: string;
  /** Fully qualified service name (lower case, no trailing dot) → ClusterIP. */
  records: Record<string, string>;
}

/** One question as dns-packet decodes it: type and class by name ("A", "IN"; "UNKNOWN_99" for others). */
export interface Question {
  name: string;
  type: string;
  class: string;
}

/** The CHAOS-class name a server answers with its own name (BIND, CoreDNS's chaos plugin). */
export const HOSTNAME_BIND = 'hostname.bind';

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
export function resolveQuestion(q: Question, zone: Zone, hostname?: string): { rcode: Rcode; answers: WireAnswer[] } {
  const name = normal(q.name);
  // CHAOS hostname.bind (as CoreDNS's chaos plugin answers it): which server answered, here with the client it saw.
  if (hostname !== undefined && q.class === 'CH' && q.type === 'TXT' && name === HOSTNAME_BIND) return { rcode: 'NOERROR', answers: [{ name: q.name, type: 'TXT', class: 'CH', ttl: 0, data: [hostname] }] };
  const domain = normal(zone.domain);
  if (name !== domain && !name.endsWith(`.${domain}`)) return { rcode: 'REFUSED', answers: [] };
  const ip = zone.records[name];
  if (ip !== undefined) {
    const wantsA = q.class === 'IN' && (q.type === 'A' || q.type === 'ANY');
    return { rcode: 'NOERROR', answers: wantsA ? [{ name: q.name, type: 'A', class: 'IN', ttl: SERVICE_TTL, data: ip }] : [] };
  }
  const interior = name === domain || Object.keys(zone.records).some((r) => r.endsWith(`.${name}`));
  return { rcode: interior ? 'NOERROR' : 'NXDOMAIN', answers: [] };
}

const OPCODE_MASK = 0x7800;
const RD = 0x0100;
const AA = 0x0400;

/**
 * The whole exchange: query bytes in, response bytes out (undefined when the bytes are not
 * even a DNS header, or are themselves a response: those are dropped, as a server does).
 */
export function answerQuery(query: Buffer, zone: Zone, hostname?: string): Buffer | undefined {
  if (query.length < 12) return undefined;
  const id = query.readUInt16BE(0);
  const flags = query.readUInt16BE(2);
  if (flags & 0x8000) return undefined;
  // The response keeps the query's opcode and RD bit, as RFC 1035 asks.
  const kept = flags & (OPCODE_MASK | RD);
  const respond = (rcode: Rcode, extra: { aa?: boolean; questions?: WireQuestion[]; answers?: WireAnswer[] } = {}) =>
    dnsPacket.encode({
      type: 'response',
      id,
      flags: kept | (extra.aa ? AA : 0) | RCODE[rcode],
      questions: extra.questions ?? [],
      answers: extra.answers ?? [],
    });
  if (kept & OPCODE_MASK) return respond('NOTIMP');
  let msg: DecodedPacket;
  try {
    msg = dnsPacket.decode(query);
  } catch {
    return respond('FORMERR');
  }
  if (msg.questions?.length !== 1) return respond('FORMERR');
  const q = msg.questions[0]!;
  const { rcode, answers } = resolveQuestion({ name: q.name, type: q.type, class: q.class ?? 'IN' }, zone, hostname);
  let response: Buffer;
  try {
    response = respond(rcode, { aa: rcode !== 'REFUSED', questions: [q], answers });
  } catch {
    return respond('FORMERR'); // a question dns-packet decodes but cannot encode again
  }
  // A question the answer could not carry back unchanged is refused, not echoed damaged.
  return carries(response, q) ? response : respond('FORMERR');
}

/**
 * Whether a response decodes back to the question it answers. dns-packet's decoder is lenient
 * where its encoder is not: it reads a label as UTF-8 (a 0xff byte becomes U+FFFD, three bytes,
 * and a 63-byte label grows past what a label may hold) and takes a length byte with its top
 * bits set (a reserved label type) as a length, so a name may not survive the trip back.
 */
function carries(response: Buffer, q: WireQuestion): boolean {
  try {
    return dnsPacket.decode(response).questions?.[0]?.name === q.name;
  } catch {
    return false;
  }
}

/** A query as a stub resolver sends it: one question, recursion desired (for tests and probes). */
export function encodeQuery(id: number, name: string, type: WireQuestion['type'] = 'A', klass: 'IN' | 'CH' = 'IN'): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: RD, questions: [{ name, type, class: klass }] });
}

/** One log line for an exchange: "A web.default.svc.cluster.local -> NOERROR 172.31.0.5". */
export function describeExchange(query: Buffer, response: Buffer | undefined): string {
  try {
    const q = dnsPacket.decode(query).questions?.[0];
    const r = response ? dnsPacket.decode(response) : undefined;
    const rcode = r ? ((r as DecodedPacket & { rcode: string }).rcode) : 'dropped';
    const addresses = (r?.answers ?? []).filter((a) => a.type === 'A').map((a) => String((a as { data?: unknown }).data));
    return `${q ? `${q.type} ${q.name}` : 'no question'} -> ${rcode}${addresses.length ? ` ${addresses.join(' ')}` : ''}`;
  } catch {
    return 'unreadable query';
  }
}

/** The text of a hostname.bind answer (its TXT strings joined), or undefined when the bytes hold none. */
export function hostnameBindAnswer(response: Buffer): string | undefined {
  try {
    const r = dnsPacket.decode(response);
    const txt = (r.answers ?? []).find((a) => a.type === 'TXT');
    const data = txt ? (txt as { data: (Buffer | string)[] | Buffer | string }).data : undefined;
    if (data === undefined) return undefined;
    return (Array.isArray(data) ? data : [data]).map((d) => d.toString()).join('');
  } catch {
    return undefined;
  }
}
