import { describe, expect, it } from 'vitest';
import {
  answerQuery,
  CLASS_IN,
  decodeMessage,
  DnsFormatError,
  encodeName,
  encodeQuery,
  encodeResponse,
  RCODE,
  readName,
  resolveQuestion,
  SERVICE_TTL,
  TYPE,
  type Zone,
} from '../../lab/workload/dns-message.js';

const zone: Zone = {
  domain: 'cluster.local',
  records: { 'web.default.svc.cluster.local': '172.31.0.5', 'kube-dns.kube-system.svc.cluster.local': '172.31.0.10' },
};

const ask = (name: string, type: number = TYPE.A, id = 0x1234) => decodeMessage(answerQuery(encodeQuery(id, name, type), zone)!);

describe('DNS wire format', () => {
  it('encodes a query byte for byte as RFC 1035 lays it out', () => {
    const q = encodeQuery(0xabcd, 'web.default', TYPE.A);
    expect(q.toString('hex')).toBe(
      [
        'abcd', // id
        '0100', // flags: RD
        '0001', '0000', '0000', '0000', // one question, no records
        '03776562', '0764656661756c74', '00', // 3"web" 7"default" root
        '0001', '0001', // type A, class IN
      ].join(''),
    );
  });

  it('reads back what it writes', () => {
    const m = decodeMessage(encodeQuery(7, 'web.default.svc.cluster.local', TYPE.AAAA));
    expect(m).toMatchObject({ id: 7, response: false, opcode: 0, recursionDesired: true, rcode: 0 });
    expect(m.questions).toEqual([{ name: 'web.default.svc.cluster.local', type: TYPE.AAAA, class: CLASS_IN }]);
  });

  it('points answers at the question name with a compression pointer', () => {
    const r = encodeResponse({
      id: 1, response: true, opcode: 0, authoritative: true, truncated: false, recursionDesired: true, recursionAvailable: false, rcode: 0,
      questions: [{ name: 'web.default.svc.cluster.local', type: TYPE.A, class: CLASS_IN }],
      answers: [{ name: 'web.default.svc.cluster.local', type: TYPE.A, class: CLASS_IN, ttl: 5, address: '172.31.0.5' }],
    });
    const questionEnd = 12 + encodeName('web.default.svc.cluster.local').length + 4;
    expect(r.subarray(questionEnd, questionEnd + 2).toString('hex')).toBe('c00c');
    expect(r.subarray(r.length - 4).toString('hex')).toBe('ac1f0005');
    expect(decodeMessage(r).answers).toEqual([{ name: 'web.default.svc.cluster.local', type: TYPE.A, class: CLASS_IN, ttl: 5, address: '172.31.0.5' }]);
  });

  it('follows compression pointers and refuses loops and overruns', () => {
    // "a" at 12, then a pointer back to it.
    const buf = Buffer.from([...Buffer.alloc(12), 1, 0x61, 0, 0xc0, 12]);
    expect(readName(buf, 15)).toEqual({ name: 'a', next: 17 });
    const loop = Buffer.from([...Buffer.alloc(12), 0xc0, 12]);
    expect(() => readName(loop, 12)).toThrow(DnsFormatError);
    expect(() => readName(Buffer.from([...Buffer.alloc(12), 5, 0x61]), 12)).toThrow(/past the end/);
    expect(() => decodeMessage(Buffer.alloc(5))).toThrow(/header/);
  });

  it('rejects labels and names over the limits', () => {
    expect(() => encodeName(`${'a'.repeat(64)}.local`)).toThrow(/63/);
    expect(() => encodeName(Array.from({ length: 5 }, () => 'a'.repeat(60)).join('.'))).toThrow(/255/);
    expect(encodeName('cluster.local.')).toEqual(encodeName('cluster.local'));
  });
});

describe('cluster DNS answers', () => {
  it('answers a service name with its ClusterIP, authoritatively, with the query id and RD echoed', () => {
    const r = ask('web.default.svc.cluster.local', TYPE.A, 0x4242);
    expect(r).toMatchObject({ id: 0x4242, response: true, authoritative: true, recursionDesired: true, rcode: RCODE.NOERROR });
    expect(r.questions).toEqual([{ name: 'web.default.svc.cluster.local', type: TYPE.A, class: CLASS_IN }]);
    expect(r.answers).toEqual([{ name: 'web.default.svc.cluster.local', type: TYPE.A, class: CLASS_IN, ttl: SERVICE_TTL, address: '172.31.0.5' }]);
  });

  it('matches names case-insensitively and keeps the asker\'s spelling', () => {
    const r = ask('WEB.Default.svc.cluster.local');
    expect(r.answers.map((a) => [a.name, a.address])).toEqual([['WEB.Default.svc.cluster.local', '172.31.0.5']]);
  });

  it('gives no data (not NXDOMAIN) for other types of a known name, so A+AAAA lookups still succeed', () => {
    const r = ask('web.default.svc.cluster.local', TYPE.AAAA);
    expect(r.rcode).toBe(RCODE.NOERROR);
    expect(r.answers).toEqual([]);
  });

  it('says NXDOMAIN for unknown names in the cluster domain, as the ndots:5 search list produces them', () => {
    expect(ask('web.default.svc.cluster.local.default.svc.cluster.local').rcode).toBe(RCODE.NXDOMAIN);
    expect(ask('db.default.svc.cluster.local').rcode).toBe(RCODE.NXDOMAIN);
  });

  it('treats ancestors of service names as existing but empty', () => {
    for (const name of ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']) {
      const r = ask(name);
      expect([name, r.rcode, r.answers.length]).toEqual([name, RCODE.NOERROR, 0]);
    }
  });

  it('refuses names outside the cluster domain (there is no upstream to forward to)', () => {
    const r = ask('example.com');
    expect(r.rcode).toBe(RCODE.REFUSED);
    expect(r.authoritative).toBe(false);
    expect(resolveQuestion({ name: 'notcluster.local', type: TYPE.A, class: CLASS_IN }, zone).rcode).toBe(RCODE.REFUSED);
  });

  it('answers malformed queries with FORMERR, other opcodes with NOTIMP, and ignores responses and runts', () => {
    const q = encodeQuery(9, 'web.default.svc.cluster.local');
    const truncated = q.subarray(0, q.length - 3);
    expect(decodeMessage(answerQuery(truncated, zone)!)).toMatchObject({ id: 9, rcode: RCODE.FORMERR });
    const noQuestion = Buffer.from(q.subarray(0, 12));
    noQuestion.writeUInt16BE(0, 4);
    expect(decodeMessage(answerQuery(noQuestion, zone)!).rcode).toBe(RCODE.FORMERR);
    const status = Buffer.from(q);
    status.writeUInt16BE(0x1100, 2); // opcode 2 (STATUS), RD
    expect(decodeMessage(answerQuery(status, zone)!).rcode).toBe(RCODE.NOTIMP);
    const response = Buffer.from(q);
    response.writeUInt16BE(0x8100, 2);
    expect(answerQuery(response, zone)).toBeUndefined();
    expect(answerQuery(Buffer.alloc(4), zone)).toBeUndefined();
  });
});
