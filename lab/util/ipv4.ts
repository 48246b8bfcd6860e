/** Small, strict IPv4 helpers: the lab only speaks IPv4, as the seed documents do. */

export function parseIPv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p, i) => p > 255 || (m[i + 1]!.length > 1 && m[i + 1]!.startsWith('0')))) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  network: number;
  prefix: number;
  text: string;
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses "a.b.c.d/n"; the address must be the network address (no host bits). */
export function parseCidr(text: string): Cidr | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!m) return undefined;
  const addr = parseIPv4(m[1]!);
  const prefix = Number(m[2]);
  if (addr === undefined || prefix > 32) return undefined;
  if ((addr & maskOf(prefix)) >>> 0 !== addr) return undefined;
  return { network: addr, prefix, text };
}

export function cidrContains(cidr: Cidr, addr: number): boolean {
  return ((addr & maskOf(cidr.prefix)) >>> 0) === cidr.network;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  return ((a.network & maskOf(prefix)) >>> 0) === ((b.network & maskOf(prefix)) >>> 0);
}

/** The first usable host of a subnet, e.g. 10.244.0.1 for 10.244.0.0/24: where cbr0 lives. */
export function firstHost(cidr: Cidr): string {
  return formatIPv4(cidr.network + 1);
}

export function isNetworkOrBroadcast(cidr: Cidr, addr: number): boolean {
  if (cidr.prefix >= 31) return false;
  const broadcast = (cidr.network | (~maskOf(cidr.prefix) >>> 0)) >>> 0;
  return addr === cidr.network || addr === broadcast;
}

/** Ranges the kernel will not route as ordinary host addresses, and why: a lab built on them fails at apply or cannot be verified. */
const UNUSABLE_RANGES: { cidr: Cidr; why: string }[] = [
  { text: '0.0.0.0/8', why: '"this network", not assignable to a host' },
  { text: '127.0.0.0/8', why: 'loopback: the kernel keeps it on lo, so traffic never crosses the lab' },
  { text: '169.254.0.0/16', why: 'link-local: not routed past one link' },
  { text: '224.0.0.0/4', why: 'multicast, not assignable to a host' },
  { text: '240.0.0.0/4', why: 'reserved (and 255.255.255.255 broadcast), not assignable to a host' },
].map(({ text, why }) => ({ cidr: parseCidr(text)!, why }));

/** Why a range cannot hold the lab's hosts, if it cannot: it overlaps a special-purpose range. */
export function unusableRange(cidr: Cidr): string | undefined {
  const hit = UNUSABLE_RANGES.find((u) => cidrsOverlap(u.cidr, cidr));
  return hit && `${cidr.text} overlaps ${hit.cidr.text}, ${hit.why}`;
}
