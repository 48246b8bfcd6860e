/**
 * A seeded fuzzer for the lab's pod sockets: malformed HTTP (raw TCP bytes, odd request
 * targets, broken headers, huge lines, half-closed and reset connections) and mutated DNS
 * queries over UDP and TCP. The same seed sends the same bytes in the same order, so a failure
 * is reproduced from its seed. Run it inside a lab namespace (test/e2e/workload-fuzz.test.ts):
 *
 *   lab exec clusterip frontend -- node dist/scripts/fuzz-pods.js --seed 7 --cases 200 \
 *     --http 10.244.0.3:8443 --dns 10.244.1.10:53
 *
 * It prints one JSON line: what it sent and how the servers took it. It judges nothing: the
 * test does, by asking the pods afterwards.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { pathToFileURL } from 'node:url';
import { encodeQuery } from '../lab/workload/dns-message.js';

/** mulberry32: a small, fast PRNG whose whole state is its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;
const pick = <T>(r: Random, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: Random, max: number) => Math.floor(r() * max);
const randomBytes = (r: Random, n: number) => Buffer.from(Array.from({ length: n }, () => int(r, 256)));

/** How a fuzzing client ends its connection. */
export type Ending = 'close' | 'half-close' | 'reset' | 'trickle' | 'silent';

export interface HttpCase {
  bytes: Buffer;
  ending: Ending;
}

const TARGETS = ['/', '//', '///x', '//:99999', '//a:b@c', '/%', '/%zz', '/%E0%A4%A', '/?delay=abc', '/?delay=-5', '/?delay=1e400', '/?delay=%', '/?delay=30', '/?delay=NaN&delay=9', '/?&&&==', '*', '', '?', 'http://', 'http://[::1', 'http://a:99999/', 'x', '/\u0000', '/\u00ff\u00fe', '/../../etc/passwd', '/#frag'];
const METHODS = ['GET', 'POST', 'HEAD', 'PUT', 'CONNECT', 'OPTIONS', 'TRACE', 'PRI', 'G\u0000T', 'get', '', 'X'.repeat(300)];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.0', 'HTTP/9.9', 'HTTP/1.1 extra', 'HTTP/', ''];
const HEADER_SETS: readonly string[][] = [
  ['Host: pod'],
  [],
  ['Host'],
  ['Host: a', 'Host: b'],
  ['Content-Length: -1'],
  ['Content-Length: 5', 'Content-Length: 6'],
  ['Content-Length: 99999999999999999999'],
  ['Transfer-Encoding: chunked', '', 'zz', 'abc'],
  ['Transfer-Encoding: chunked', 'Content-Length: 3'],
  ['X-Fold: a', ' continued'],
  ['X-Nul: a\u0000b'],
  ['Expect: 100-continue', 'Content-Length: 10'],
  ['Upgrade: websocket', 'Connection: Upgrade'],
  ['Connection: keep-alive'],
  [': no name'],
  ['Bad Name: x'],
];
const EOLS = ['\r\n', '\n', '\r'];

/** One malformed (or, now and then, well-formed) HTTP request as raw bytes. */
function httpRequest(r: Random): Buffer {
  const roll = r();
  if (roll < 0.08) return randomBytes(r, 1 + int(r, 2048)); // not HTTP at all
  let target = pick(r, TARGETS);
  if (roll < 0.14) target = `/${'a'.repeat(10_000 + int(r, 60_000))}`; // a request line over Node's limit
  const eol = r() < 0.7 ? '\r\n' : pick(r, EOLS);
  const headers = [...pick(r, HEADER_SETS)];
  if (r() < 0.06) headers.push(`X-Huge: ${'b'.repeat(20_000 + int(r, 60_000))}`); // a head over 16 KB
  let text = `${pick(r, METHODS)} ${target} ${pick(r, VERSIONS)}${eol}${headers.join(eol)}${eol}${eol}`;
  if (r() < 0.1) text += `GET ${pick(r, TARGETS)} HTTP/1.1${eol}${eol}`; // pipelined
  const bytes = Buffer.from(text, 'latin1');
  return r() < 0.3 ? mutate(r, bytes) : bytes;
}

/** Flip, cut, insert or repeat a few bytes. */
export function mutate(r: Random, input: Buffer): Buffer {
  let b = Buffer.from(input);
  for (let n = 1 + int(r, 4); n > 0; n--) {
    const at = int(r, Math.max(1, b.length));
    const op = int(r, 5);
    if (op === 0 && b.length > 0) b[at] = b[at]! ^ (1 << int(r, 8));
    else if (op === 1) b = b.subarray(0, at);
    else if (op === 2) b = Buffer.concat([b.subarray(0, at), randomBytes(r, 1 + int(r, 16)), b.subarray(at)]);
    else if (op === 3 && b.length > 0) b[at] = pick(r, [0, 0xff, 0x0a, 0x0d, 0x3a, 0x20, 0xc0]);
    else b = Buffer.concat([b, b.subarray(at, at + 64)]);
  }
  return b;
}

export function httpCases(seed: number, count: number): HttpCase[] {
  const r = seededRandom(seed);
  const endings: Ending[] = ['close', 'close', 'half-close', 'reset', 'trickle', 'silent'];
  return Array.from({ length: count }, () => ({ bytes: httpRequest(r), ending: pick(r, endings) }));
}

const DNS_NAMES = ['web.default.svc.cluster.local', 'default.svc.cluster.local', 'cluster.local', 'nope.cluster.local', 'example.com', 'a'.repeat(63) + '.cluster.local', '.', 'x'];
const DNS_TYPES: Parameters<typeof encodeQuery>[2][] = ['A', 'AAAA', 'TXT', 'SRV', 'PTR', 'MX', 'OPT'];

/** One DNS query: well formed, mutated, or crafted to break a parser (pointer loops, lying counts). */
function dnsQuery(r: Random): Buffer {
  let q: Buffer;
  try {
    q = encodeQuery(int(r, 65536), pick(r, DNS_NAMES), pick(r, DNS_TYPES));
  } catch {
    q = encodeQuery(int(r, 65536), 'web.default.svc.cluster.local');
  }
  const roll = r();
  if (roll < 0.1) return randomBytes(r, int(r, 600));
  if (roll < 0.2) {
    // A name that is a compression pointer to itself, or past the end.
    const head = Buffer.from(q.subarray(0, 12));
    return Buffer.concat([head, Buffer.from([0xc0, pick(r, [12, 13, 200, 255]), 0, 1, 0, 1])]);
  }
  if (roll < 0.3) {
    // Counts that lie: no questions, two, 65535; answers and additionals in a query.
    const b = Buffer.from(q);
    b.writeUInt16BE(pick(r, [0, 2, 65535]), 4 + 2 * int(r, 4));
    return b;
  }
  if (roll < 0.35) {
    const b = Buffer.from(q);
    b.writeUInt16BE(b.readUInt16BE(2) | pick(r, [0x8000, 0x7800, 0x0200, 0x000f]), 2); // response bit, opcode, TC, rcode
    return b;
  }
  return roll < 0.8 ? mutate(r, q) : q;
}

export function dnsCases(seed: number, count: number): Buffer[] {
  const r = seededRandom(seed ^ 0x5bd1e995);
  return Array.from({ length: count }, () => dnsQuery(r));
}

/** DNS over TCP: messages with their two-byte lengths, which sometimes lie; cut, or pipelined. */
export function dnsTcpStream(seed: number, messages: Buffer[]): Buffer {
  const r = seededRandom(seed);
  const parts = messages.map((m) => {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(r() < 0.2 ? int(r, 65536) : m.length, 0);
    return Buffer.concat([len, m]);
  });
  const all = Buffer.concat(parts);
  return r() < 0.2 ? all.subarray(0, int(r, all.length + 1)) : all;
}

// ---- sending ----

const CONNECTION_MS = 1500;

interface Tally {
  connections: number;
  answered: number;
  refused: number;
  errors: number;
  datagrams: number;
  datagramAnswers: number;
}

const splitTarget = (t: string) => ({ host: t.slice(0, t.lastIndexOf(':')), port: Number(t.slice(t.lastIndexOf(':') + 1)) });

/** One TCP connection: write the bytes, end it as the case says, count whether anything came back. */
function sendTcp(target: string, bytes: Buffer, ending: Ending, tally: Tally): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(splitTarget(target));
    let got = false;
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve();
    };
    const timer = setTimeout(done, CONNECTION_MS);
    tally.connections++;
    s.on('data', () => (got ||= true));
    s.on('close', () => {
      if (got) tally.answered++;
      done();
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') tally.refused++;
      else tally.errors++;
      done();
    });
    s.on('connect', () => {
      if (ending === 'silent') return void s.end();
      if (ending === 'trickle') return trickle(s, bytes.subarray(0, 40));
      s.write(bytes);
      if (ending === 'reset') setTimeout(() => s.resetAndDestroy(), 5);
      else if (ending === 'half-close') s.end();
      else setTimeout(() => s.end(), 20);
    });
  });
}

function trickle(s: import('node:net').Socket, bytes: Buffer): void {
  let i = 0;
  const next = () => {
    if (s.destroyed) return;
    if (i >= bytes.length) return void s.end();
    s.write(bytes.subarray(i, i + 1));
    i++;
    setTimeout(next, 10);
  };
  next();
}

function sendDatagrams(target: string, queries: Buffer[], tally: Tally): Promise<void> {
  const { host, port } = splitTarget(target);
  const u = createSocket('udp4');
  u.on('message', () => tally.datagramAnswers++);
  u.on('error', () => tally.errors++);
  return new Promise((resolve) => {
    u.bind(0, async () => {
      for (const q of queries) {
        u.send(q, port, host);
        tally.datagrams++;
        await new Promise((r) => setImmediate(r));
      }
      setTimeout(() => {
        u.close();
        resolve();
      }, 300);
    });
  });
}

/** Run up to `limit` jobs at once. */
async function inParallel(jobs: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < jobs.length) await jobs[next++]!();
  }));
}

export interface FuzzOptions {
  seed: number;
  cases: number;
  http: string[];
  dns: string[];
}

export async function fuzz(o: FuzzOptions): Promise<Tally & { seed: number }> {
  const tally: Tally = { connections: 0, answered: 0, refused: 0, errors: 0, datagrams: 0, datagramAnswers: 0 };
  const jobs: (() => Promise<void>)[] = [];
  o.http.forEach((t, i) => httpCases(o.seed + i, o.cases).forEach((c) => jobs.push(() => sendTcp(t, c.bytes, c.ending, tally))));
  o.dns.forEach((t, i) => {
    const queries = dnsCases(o.seed + i, o.cases);
    jobs.push(() => sendDatagrams(t, queries, tally));
    for (let k = 0; k < queries.length; k += 8) {
      const stream = dnsTcpStream(o.seed + k, queries.slice(k, k + 8));
      jobs.push(() => sendTcp(t, stream, k % 16 === 0 ? 'reset' : 'half-close', tally));
    }
  });
  // Interleave the targets, so every server is under fire at once.
  const r = seededRandom(o.seed);
  for (let i = jobs.length - 1; i > 0; i--) {
    const j = int(r, i + 1);
    [jobs[i], jobs[j]] = [jobs[j]!, jobs[i]!];
  }
  await inParallel(jobs, 24);
  return { seed: o.seed, ...tally };
}

function parseArgs(argv: string[]): FuzzOptions {
  const o: FuzzOptions = { seed: 1, cases: 100, http: [], dns: [] };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value = ''] = [argv[i], argv[i + 1]];
    if (flag === '--seed') o.seed = Number(value);
    else if (flag === '--cases') o.cases = Number(value);
    else if (flag === '--http') o.http.push(...value.split(',').filter(Boolean));
    else if (flag === '--dns') o.dns.push(...value.split(',').filter(Boolean));
    else throw new Error(`fuzz-pods: unknown argument ${flag}`);
  }
  if (!Number.isInteger(o.seed) || !Number.isInteger(o.cases) || o.cases < 1 || o.cases > 100_000) throw new Error('fuzz-pods: --seed and --cases (1-100000) take whole numbers');
  return o;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  fuzz(parseArgs(process.argv.slice(2))).then(
    (t) => console.log(JSON.stringify(t)),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exit(2);
    },
  );
}
