import { createSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import { afterAll, describe, expect, it } from 'vitest';
import { dnsCases, httpCases, mutate, seededRandom } from '../../scripts/fuzz-pods.js';
import { answerQuery, type Zone } from '../../lab/workload/dns-message.js';
import { datagramHandler } from '../../lab/workload/dns-pod.js';
import { MAX_DELAY_MS, requestedDelay } from '../../lab/workload/http-pod.js';

/** Every fuzz run prints its seed; LAB_FUZZ_SEED replays one. */
const SEED = Number(process.env.LAB_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const withSeed = (what: string) => `${what} (seed ${SEED}; replay with LAB_FUZZ_SEED=${SEED})`;
const zone: Zone = { domain: 'cluster.local', records: { 'web.default.svc.cluster.local': '172.31.0.5' } };

describe('the fuzzer', () => {
  it('sends the same bytes for the same seed, and others for another', () => {
    const a = httpCases(SEED, 50).map((c) => c.bytes.toString('hex') + c.ending);
    expect(httpCases(SEED, 50).map((c) => c.bytes.toString('hex') + c.ending)).toEqual(a);
    expect(httpCases(SEED + 1, 50).map((c) => c.bytes.toString('hex') + c.ending)).not.toEqual(a);
    expect(dnsCases(SEED, 20)).toEqual(dnsCases(SEED, 20));
  });
});

describe('requestedDelay: any request target', () => {
  it('reads /?delay=<ms>, bounded to a minute', () => {
    expect(requestedDelay('/?delay=250')).toBe(250);
    expect(requestedDelay('/x?a=1&delay=10.7')).toBe(10);
    expect(requestedDelay('/?delay=999999999')).toBe(MAX_DELAY_MS);
  });

  it('means no delay, never an exception, for targets that are no URL (the crash of issue 16)', () => {
    for (const t of ['//', '///x', '//:99999', '/?delay=%', '/?delay=1e400', '/?delay=-1', '*', '', undefined, 'http://[::1', '/?delay=NaN']) expect(requestedDelay(t)).toBe(0);
  });

  it('survives fuzzed targets', () => {
    const r = seededRandom(SEED);
    for (const c of httpCases(SEED, 2000)) {
      const target = mutate(r, c.bytes).toString('latin1').split(' ')[1];
      const d = requestedDelay(target);
      expect(d >= 0 && d <= MAX_DELAY_MS, withSeed(`delay ${d} for ${JSON.stringify(target)}`)).toBe(true);
    }
  });
});

describe('answerQuery: any datagram', () => {
  it('never throws, and answers only with a decodable message of one question or none', () => {
    for (const [i, q] of dnsCases(SEED, 10_000).entries()) {
      let out: Buffer | undefined;
      try {
        out = answerQuery(q, zone);
      } catch (err) {
        throw new Error(withSeed(`query ${i} (${q.toString('hex')}) threw ${String(err)}`));
      }
      if (out === undefined) continue;
      expect(out.length, withSeed(`answer to query ${i}`)).toBeLessThan(512);
      const decoded = dnsPacket.decode(out);
      expect(decoded.type, withSeed(`answer to query ${i}`)).toBe('response');
      expect((decoded.questions ?? []).length).toBeLessThanOrEqual(1);
    }
  });
});

describe('the DNS pod\'s datagram handler', () => {
  const udp = createSocket('udp4');
  afterAll(() => udp.close());

  it('drops a query from source port 0 instead of throwing (dgram refuses to send there)', () => {
    const handle = datagramHandler(udp, (_t, _from, q) => answerQuery(q, zone), 'test');
    const query = dnsCases(SEED, 1)[0]!;
    expect(() => handle(Buffer.from('0001010000010000000000000377656207646566061756c7403737663076c7573746572056c6f63616c0000010001', 'hex'), { address: '10.244.0.10', port: 0, family: 'IPv4', size: 40 })).not.toThrow();
    expect(() => handle(query, { address: '10.244.0.10', port: 0, family: 'IPv4', size: query.length })).not.toThrow();
  });
});
