import type { AnswerKind, PortMode } from './schema.js';

/**
 * Comparing what a learner typed with what the live lab says. Pure.
 * Forgiving about form (spacing, case, quotes, "ip:port" or tcpdump's "ip.port"),
 * strict about substance (the address, the chain, the number).
 */

export interface AnswerContext {
  kind: AnswerKind;
  port: PortMode;
  /** Host name → address, so a pod may be named or given by address. */
  hosts?: ReadonlyMap<string, string>;
}

export interface Verdict {
  ok: boolean;
  /** Why a near miss is not accepted (e.g. the port is missing), said instead of a plain "no". */
  message?: string;
  /** The answer is not of the expected form at all (no address, no number): not counted as a try. */
  form?: boolean;
  /** Which of the acceptable values the answer matched. */
  matched?: string;
  /** Half right (the address, not its port): said, but neither counted as a try nor costing a hint. */
  near?: boolean;
}

/** Trim, drop surrounding quotes or backticks and a final full stop, collapse spaces, lower case. */
export function normaliseAnswer(raw: string): string {
  let s = raw.trim().replace(/\s+/g, ' ');
  for (;;) {
    const before = s;
    s = s.replace(/[.!:,;]+$/, '').trim();
    const m = /^(["'`])(.*)\1$/.exec(s);
    if (m) s = m[2]!.trim();
    if (s === before) break;
  }
  return s.toLowerCase();
}

export interface Address {
  ip: string;
  port?: number;
}

const IP = String.raw`(\d{1,3}(?:\.\d{1,3}){3})`;

/**
 * "10.244.1.2", "10.244.1.2:8443", "10.244.1.2.8443" (tcpdump), "10.244.1.2 port 8443",
 * "10.244.1.2/32" (iptables-save), and IPv6 the same ways ("[fd00::4]:32000", "fd00::4.32000");
 * undefined when it is not an address.
 */
export function parseAddress(text: string): Address | undefined {
  const s = normaliseAnswer(text).replace(/^(src|dst|from|to)[=: ]\s*/, '');
  let m = new RegExp(`^${IP}(?:/32)?$`).exec(s);
  if (m) return validIp(m[1]!) ? { ip: m[1]! } : undefined;
  m = new RegExp(`^${IP}(?::| port |\\.| )(\\d{1,5})$`).exec(s);
  if (m && validIp(m[1]!)) {
    const port = Number(m[2]);
    return port <= 65535 ? { ip: m[1]!, port } : undefined;
  }
  return s.includes(':') ? parseAddress6(s) : undefined;
}

/** An IPv6 address in RFC 5952 form (as the kernel and conntrack print it), or undefined. */
export function canonicalIpv6(text: string): string | undefined {
  if (!/^[0-9a-f:.]+$/.test(text) || !text.includes(':')) return undefined;
  try {
    return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

/** "fd00::4", "[fd00::4]", "[fd00::4]:32000", "fd00::4.32000" (tcpdump), "fd00::4/128" (ip6tables-save). */
function parseAddress6(s: string): Address | undefined {
  let m = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/.exec(s);
  if (m) {
    const ip = canonicalIpv6(m[1]!);
    const port = m[2] === undefined ? undefined : Number(m[2]);
    return ip && (port === undefined || port <= 65535) ? { ip, ...(port === undefined ? {} : { port }) } : undefined;
  }
  m = /^([0-9a-f:]+)(?:\/128)?$/.exec(s);
  if (m) {
    const ip = canonicalIpv6(m[1]!);
    return ip ? { ip } : undefined;
  }
  m = /^([0-9a-f:]+)(?:\.| port )(\d{1,5})$/.exec(s);
  if (m) {
    const ip = canonicalIpv6(m[1]!);
    return ip && Number(m[2]) <= 65535 ? { ip, port: Number(m[2]) } : undefined;
  }
  return undefined;
}

const validIp = (ip: string) => ip.split('.').every((o) => Number(o) <= 255 && String(Number(o)) === o);

/** "0.5", ".5", "0.50000000000", "50%", "1/2"; undefined when it is not a number. */
export function parseNumber(text: string): number | undefined {
  const s = normaliseAnswer(text).replace(/\s/g, '');
  let m = /^(\d+(?:\.\d*)?|\.\d+)%$/.exec(s);
  if (m) return Number(m[1]) / 100;
  m = /^(\d+)\/(\d+)$/.exec(s);
  if (m) return Number(m[2]) === 0 ? undefined : Number(m[1]) / Number(m[2]);
  if (/^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/.test(s)) return Number(s);
  return undefined;
}

const YES = new Set(['yes', 'y', 'true', 'yep']);
const NO = new Set(['no', 'n', 'false', 'nope', 'none', 'never']);

/** Chain and interface names: case-insensitive, a leading "-j " tolerated. */
const normaliseName = (s: string) => normaliseAnswer(s).replace(/^-j /, '').toUpperCase();

function normaliseText(s: string): string {
  const n = normaliseAnswer(s);
  if (YES.has(n)) return 'yes';
  if (NO.has(n)) return 'no';
  return n;
}

/** A pod (or any host) named by name or by address, as its name. */
function podName(text: string, hosts: ReadonlyMap<string, string> | undefined): string {
  const a = parseAddress(text);
  if (a && hosts) {
    for (const [name, ip] of hosts) if (ip === a.ip) return name;
    return a.ip;
  }
  return normaliseAnswer(text);
}

/** Does the learner's answer match one of the acceptable values the lab found? */
export function judge(raw: string, expected: readonly string[], ctx: AnswerContext): Verdict {
  if (normaliseAnswer(raw) === '') return { ok: false, message: 'that was empty', form: true };
  let first: Verdict | undefined;
  for (const e of expected) {
    const v = judgeOne(raw, e, ctx);
    if (v.ok) return { ...v, matched: e };
    // Keep the most telling miss: one that says why (e.g. right address, port missing).
    if (!first || (!first.message && v.message) || (v.near && !first.near)) first = v;
  }
  return first ?? { ok: false };
}

function judgeOne(raw: string, expected: string, ctx: AnswerContext): Verdict {
  switch (ctx.kind) {
    case 'address':
      return judgeAddress(raw, expected, ctx.port);
    case 'number': {
      const got = parseNumber(raw);
      if (got === undefined) return { ok: false, message: 'a number is expected here (0.5, 50% and 1/2 all work)', form: true };
      const want = parseNumber(expected);
      return { ok: want !== undefined && Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want)) };
    }
    case 'pod':
      return { ok: podName(expected, ctx.hosts) === podName(raw, ctx.hosts) };
    case 'name':
      return { ok: normaliseName(expected) === normaliseName(raw) };
    case 'text':
      return { ok: normaliseText(expected) === normaliseText(raw) };
  }
}

function judgeAddress(raw: string, expected: string, mode: PortMode): Verdict {
  const got = parseAddress(raw);
  if (!got) return { ok: false, message: 'an address is expected here, like 10.240.0.4 or 10.240.0.4:32000', form: true };
  const want = parseAddress(expected);
  if (!want || want.ip !== got.ip) return { ok: false };
  if (mode === 'ignore') return { ok: true };
  if (got.port === undefined) {
    if (mode === 'required' && want.port !== undefined) return { ok: false, near: true, message: 'right address; now the port too (address:port)' };
    return { ok: true };
  }
  if (want.port === undefined || want.port === got.port) return { ok: true };
  return { ok: false, near: true, message: `the address ${got.ip} is right, the port ${got.port} is not: look at the port again` };
}

/** The form an expected value is shown in after a skip or a right answer. */
export function showExpected(expected: readonly string[], ctx: AnswerContext): string {
  const first = expected[0] ?? '';
  if (ctx.kind === 'address' && ctx.port === 'ignore') {
    const a = parseAddress(first);
    if (a) return a.ip;
  }
  if (ctx.kind === 'pod') {
    const name = podName(first, ctx.hosts);
    const a = parseAddress(first);
    return a && name !== a.ip ? `${name} (${a.ip})` : name;
  }
  if (ctx.kind === 'number') {
    const n = parseNumber(first);
    if (n !== undefined) return String(Number(n.toFixed(10)));
  }
  return first;
}
