import dnsPacket, { type DecodedPacket } from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { answerQuery, describeExchange, encodeQuery, resolveQuestion, SERVICE_TTL, type Zone } from '../../lab/workload/dns-message.js';

const zone: Zone = {
  domain: 'cluster.local',
  records: { 'web.default.svc.cluster.local': '172.31.0.5', 'kube-dns.kube-system.svc.cluster.local': '172.31.0.10' },
};

/** The response as a resolver reads it (dns-packet's decoder; rcode and opcode by name). */
type Response = DecodedPacket & { rcode: string; opcode: string };
const decode = (b: Buffer) => dnsPacket.decode(b) as Response;
const ask = (name: string, type: Parameters<typeof encodeQuery>[2] = 'A', id = 0x1234) => decode(answerQuery(encodeQuery(id, name, type), zone)!);

/** A query as glibc's stub resolver sends it, byte for byte (RFC 1035 layout), not made by the codec under test. */
const GLIBC_QUERY = Buffer.from(
  [
    'abcd', // id
    '0100', // flags: RD
    '0001', '0000', '0000', '0000', // one question, no records
    '03776562', '0764656661756c74', '03737663', '07636c7573746572', '056c6f63616c', '00', // web.default.svc.cluster.local
    '0001', '0001', // type A, class IN
  ].join(''),
  'hex',
);

describe('DNS on the wire (dns-packet does the codec; these pin what the lab sends back)', () => {
  it('answers a hand-made query with a response whose bytes a resolver reads as RFC 1035 says', () => {
    const r = answerQuery(GLIBC_QUERY, zone)!;
    expect(r.readUInt16BE(0)).toBe(0xabcd);
    expect(r.readUInt16BE(2)).toBe(0x8500); // QR, AA, RD; opcode 0; rcode NOERROR
    expect([r.readUInt16BE(4), r.readUInt16BE(6)]).toEqual([1, 1]);
    // The question comes back unchanged, then one A record of 172.31.0.5 with a 5 s TTL.
    expect(r.subarray(12, GLIBC_QUERY.length).equals(GLIBC_QUERY.subarray(12))).toBe(true);
    expect(r.subarray(r.length - 10).toString('hex')).toBe('00000005' + '0004' + 'ac1f0005');
  });

  it('logs an exchange in one line', () => {
    expect(describeExchange(GLIBC_QUERY, answerQuery(GLIBC_QUERY, zone))).toBe('A web.default.svc.cluster.local -> NOERROR 172.31.0.5');
    expect(describeExchange(Buffer.alloc(3), undefined)).toBe('unreadable query');
  });
});

describe('cluster DNS answers', () => {
  it('answers a service name with its ClusterIP, authoritatively, with the query id and RD echoed', () => {
    const r = ask('web.default.svc.cluster.local', 'A', 0x4242);
    expect(r).toMatchObject({ id: 0x4242, type: 'response', flag_aa: true, flag_rd: true, rcode: 'NOERROR' });
    expect(r.questions).toEqual([{ name: 'web.default.svc.cluster.local', type: 'A', class: 'IN' }]);
    expect(r.answers).toEqual([{ name: 'web.default.svc.cluster.local', type: 'A', class: 'IN', ttl: SERVICE_TTL, flush: false, data: '172.31.0.5' }]);
  });

  it('matches names case-insensitively and keeps the asker\'s spelling', () => {
    const r = ask('WEB.Default.svc.cluster.local');
    expect(r.answers!.map((a) => [a.name, (a as { data: string }).data])).toEqual([['WEB.Default.svc.cluster.local', '172.31.0.5']]);
  });

  it('gives no data (not NXDOMAIN) for other types of a known name, so A+AAAA lookups still succeed', () => {
    const r = ask('web.default.svc.cluster.local', 'AAAA');
    expect(r.rcode).toBe('NOERROR');
    expect(r.answers).toEqual([]);
  });

  it('says NXDOMAIN for unknown names in the cluster domain, as the ndots:5 search list produces them', () => {
    expect(ask('web.default.svc.cluster.local.default.svc.cluster.local').rcode).toBe('NXDOMAIN');
    expect(ask('db.default.svc.cluster.local').rcode).toBe('NXDOMAIN');
  });

  it('treats ancestors of service names as existing but empty', () => {
    for (const name of ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']) {
      const r = ask(name);
      expect([name, r.rcode, r.answers!.length]).toEqual([name, 'NOERROR', 0]);
    }
  });

  it('refuses names outside the cluster domain (there is no upstream to forward to)', () => {
    const r = ask('example.com');
    expect(r.rcode).toBe('REFUSED');
    expect(r.flag_aa).toBe(false);
    expect(resolveQuestion({ name: 'notcluster.local', type: 'A', class: 'IN' }, zone).rcode).toBe('REFUSED');
  });

  it('answers malformed queries with FORMERR, other opcodes with NOTIMP, and ignores responses and runts', () => {
    const q = encodeQuery(9, 'web.default.svc.cluster.local');
    const truncated = q.subarray(0, q.length - 3);
    expect(decode(answerQuery(truncated, zone)!)).toMatchObject({ id: 9, rcode: 'FORMERR' });
    const noQuestion = Buffer.from(q.subarray(0, 12));
    noQuestion.writeUInt16BE(0, 4);
    expect(decode(answerQuery(noQuestion, zone)!).rcode).toBe('FORMERR');
    const status = Buffer.from(q);
    status.writeUInt16BE(0x1100, 2); // opcode 2 (STATUS), RD
    expect(decode(answerQuery(status, zone)!).rcode).toBe('NOTIMP');
    const response = Buffer.from(q);
    response.writeUInt16BE(0x8100, 2);
    expect(answerQuery(response, zone)).toBeUndefined();
    expect(answerQuery(Buffer.alloc(4), zone)).toBeUndefined();
  });
});
