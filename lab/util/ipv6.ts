/**
 * Small, strict IPv6 helpers beside ipv4.ts, for dual-stack labs (docs/dualstack.md).
 * Addresses are bigints; the lab accepts only the RFC 5952 text form (lower case, the longest
 * run of zero groups compressed), the one the kernel, tcpdump and conntrack print, so an address
 * in a topology or walkthrough compares equal to what the wire shows as plain text.
 */

import { cidrContains, parseCidr, parseIPv4 } from './ipv4.js';

export interface Cidr6 {
  network: bigint;
  prefix: number;
  text: string;
}

const ALL = (1n << 128n) - 1n;

/** Any valid IPv6 text (no zone, no embedded IPv4) to its value. */
export function parseIPv6Loose(text: string): bigint | undefined {
  if (!/^[0-9a-fA-F:]+$/.test(text) || text.length > 39) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if ([...head, ...tail].some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  return all.reduce((v, g) => (v << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** RFC 5952 text: lower case, leading zeros dropped, the first longest run (of two or more) of zero groups as "::". */
export function formatIPv6(v: bigint): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** The value of an address written in RFC 5952 form; any other form (or no IPv6 at all) is undefined. */
export function parseIPv6(text: string): bigint | undefined {
  const v = parseIPv6Loose(text);
  return v !== undefined && formatIPv6(v) === text ? v : undefined;
}

export const isIPv6Text = (text: string) => text.includes(':');

const maskOf = (prefix: number) => (prefix === 0 ? 0n : (ALL << BigInt(128 - prefix)) & ALL);

/** "net/len" with no host bits set, the address in RFC 5952 form. */
export function parseCidr6(text: string): Cidr6 | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const network = parseIPv6(m[1]!);
  const prefix = Number(m[2]);
  if (network === undefined || prefix > 128 || (network & maskOf(prefix)) !== network) return undefined;
  return { network, prefix, text };
}

export const cidr6Contains = (c: Cidr6, a: bigint) => (a & maskOf(c.prefix)) === c.network;

export function cidrs6Overlap(a: Cidr6, b: Cidr6): boolean {
  const m = maskOf(Math.min(a.prefix, b.prefix));
  return (a.network & m) === (b.network & m);
}

/** The first host of a prefix (network + 1): where a node's bridge lives, as for IPv4. */
export const firstHost6 = (c: Cidr6) => formatIPv6(c.network + 1n);

/** Ranges that cannot hold the lab's hosts: a host there never crosses the lab, or is no unicast host at all. */
const UNUSABLE6 = [
  { text: '::/127', why: 'the unspecified and loopback addresses' },
  { text: 'fe80::/10', why: 'link-local: the kernel gives every interface one of these itself' },
  { text: 'ff00::/8', why: 'multicast, not assignable to a host' },
  { text: '::ffff:0:0/96', why: 'IPv4-mapped, not an IPv6 host' },
].map(({ text, why }) => ({ cidr: parseCidr6(text)!, why }));

export function unusableRange6(c: Cidr6): string | undefined {
  const hit = UNUSABLE6.find((u) => cidrs6Overlap(u.cidr, c));
  return hit && `${c.text} overlaps ${hit.cidr.text}, ${hit.why}`;
}

/** "ip:port" as kube-proxy prints and hashes an endpoint (net.JoinHostPort): IPv6 in brackets. */
export const joinHostPort = (ip: string, port: number | string) => (isIPv6Text(ip) ? `[${ip}]:${port}` : `${ip}:${port}`);

/**
 * "ip:port" back into its parts: "[fd00::4]:32000" (IPv6 in brackets, as joinHostPort writes it)
 * or "10.240.0.4:32000". The address comes back without brackets.
 */
export function splitHostPort(text: string): { ip: string; port: number } {
  const m = /^\[([^\]]*)\]:(\d+)$/.exec(text);
  if (m) return { ip: m[1]!, port: Number(m[2]) };
  const i = text.lastIndexOf(':');
  return { ip: text.slice(0, i), port: Number(text.slice(i + 1)) };
}

/**
 * Is the address in the prefix ("10.244.0.0/16", "fd00:10:244::/56"), or equal to a bare address?
 * Either family; a prefix of the other family holds nothing.
 */
export function inPrefix(cidr: string | undefined, ip: string): boolean {
  if (!cidr) return false;
  if (ip.includes(':')) {
    const c = parseCidr6(cidr.includes('/') ? cidr : `${cidr}/128`);
    const a = parseIPv6Loose(ip);
    return c !== undefined && a !== undefined && cidr6Contains(c, a);
  }
  const c = parseCidr(cidr.includes('/') ? cidr : `${cidr}/32`);
  const a = parseIPv4(ip);
  return c !== undefined && a !== undefined && cidrContains(c, a);
}
