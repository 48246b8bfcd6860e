import { describe, expect, it } from 'vitest';
import { cidrContains, cidrsOverlap, firstHost, formatIPv4, isNetworkOrBroadcast, parseCidr, parseIPv4 } from '../../lab/util/ipv4.js';

const cidr = (text: string) => {
  const c = parseCidr(text);
  if (!c) throw new Error(`test setup: ${text} does not parse`);
  return c;
};
const ip = (text: string) => {
  const a = parseIPv4(text);
  if (a === undefined) throw new Error(`test setup: ${text} does not parse`);
  return a;
};

describe('parseIPv4', () => {
  it.each([
    ['0.0.0.0', 0],
    ['10.240.0.4', 0x0af00004],
    ['172.31.0.5', 0xac1f0005],
    ['127.0.0.1', 0x7f000001],
    ['255.255.255.255', 0xffffffff],
    ['128.0.0.0', 0x80000000],
  ])('%s → %d, unsigned', (text, value) => {
    expect(parseIPv4(text)).toBe(value);
    expect(parseIPv4(text)).toBeGreaterThanOrEqual(0);
  });

  it.each([
    '256.0.0.1',
    '1.2.3.300',
    '1.2.3',
    '1.2.3.4.5',
    '01.2.3.4', // leading zeros read as octal by some tools: refuse them
    '1.2.3.04',
    '1.2.3.00',
    '1.2.3.4/32',
    ' 1.2.3.4',
    '1.2.3.4 ',
    '1.2.3.-4',
    'a.b.c.d',
    '',
    '1..3.4',
    '1234.1.1.1',
  ])('rejects %j', (text) => {
    expect(parseIPv4(text)).toBeUndefined();
  });
});

describe('formatIPv4', () => {
  it('formats unsigned values', () => {
    expect(formatIPv4(0)).toBe('0.0.0.0');
    expect(formatIPv4(0xffffffff)).toBe('255.255.255.255');
    expect(formatIPv4(0x80000000)).toBe('128.0.0.0');
    expect(formatIPv4(0x0af40001)).toBe('10.244.0.1');
  });

  it('round-trips with parseIPv4', () => {
    for (const text of ['0.0.0.0', '1.2.3.4', '10.244.255.255', '192.168.0.1', '255.255.255.254', '200.100.50.25']) {
      expect(formatIPv4(ip(text))).toBe(text);
    }
  });
});

describe('parseCidr', () => {
  it('parses a network address and keeps the text', () => {
    expect(parseCidr('10.244.0.0/16')).toEqual({ network: 0x0af40000, prefix: 16, text: '10.244.0.0/16' });
    expect(parseCidr('0.0.0.0/0')).toEqual({ network: 0, prefix: 0, text: '0.0.0.0/0' });
    expect(parseCidr('10.240.0.4/32')).toEqual({ network: 0x0af00004, prefix: 32, text: '10.240.0.4/32' });
    expect(parseCidr('255.255.255.255/32')?.network).toBe(0xffffffff);
    expect(parseCidr('128.0.0.0/1')?.network).toBe(0x80000000);
    expect(parseCidr('10.244.0.0/15')?.prefix).toBe(15);
  });

  it.each([
    '10.244.0.1/24', // host bits set
    '10.245.0.0/15', // 245 is odd: not on a /15 boundary
    '1.0.0.0/0',
    '10.0.0.0/33',
    '10.0.0.0/100',
    '10.0.0.0/',
    '10.0.0.0',
    '/24',
    '300.0.0.0/8',
    '10.0.0.0/24/8',
    '10.0.0.0/-1',
  ])('rejects %j', (text) => {
    expect(parseCidr(text)).toBeUndefined();
  });
});

describe('cidrContains', () => {
  it('includes the first and last address, excludes the neighbours', () => {
    const c = cidr('10.244.1.0/24');
    expect(cidrContains(c, ip('10.244.1.0'))).toBe(true);
    expect(cidrContains(c, ip('10.244.1.255'))).toBe(true);
    expect(cidrContains(c, ip('10.244.0.255'))).toBe(false);
    expect(cidrContains(c, ip('10.244.2.0'))).toBe(false);
  });

  it('handles /0, /32 and the top half of the space (sign bit)', () => {
    expect(cidrContains(cidr('0.0.0.0/0'), ip('255.255.255.255'))).toBe(true);
    expect(cidrContains(cidr('0.0.0.0/0'), 0)).toBe(true);
    expect(cidrContains(cidr('10.240.0.4/32'), ip('10.240.0.4'))).toBe(true);
    expect(cidrContains(cidr('10.240.0.4/32'), ip('10.240.0.5'))).toBe(false);
    expect(cidrContains(cidr('192.168.0.0/16'), ip('192.168.200.1'))).toBe(true);
    expect(cidrContains(cidr('128.0.0.0/1'), ip('255.0.0.1'))).toBe(true);
    expect(cidrContains(cidr('128.0.0.0/1'), ip('127.255.255.255'))).toBe(false);
    expect(cidrContains(cidr('255.255.255.0/24'), ip('255.255.255.255'))).toBe(true);
  });
});

describe('cidrsOverlap', () => {
  it.each([
    ['10.244.0.0/16', '10.244.1.0/24', true], // nested, either order
    ['10.244.1.0/24', '10.244.0.0/16', true],
    ['10.244.0.0/24', '10.244.0.0/24', true],
    ['10.244.0.0/24', '10.244.1.0/24', false], // adjacent
    ['10.244.0.0/25', '10.244.0.128/25', false],
    ['10.240.0.0/24', '10.241.0.0/24', false],
    ['0.0.0.0/0', '172.31.0.0/16', true],
    ['172.31.0.5/32', '172.31.0.0/16', true],
    ['172.31.0.5/32', '172.31.0.6/32', false],
    ['192.168.0.0/16', '10.0.0.0/8', false],
    ['128.0.0.0/1', '200.0.0.0/8', true],
    ['128.0.0.0/1', '0.0.0.0/1', false],
  ])('%s and %s → %s', (a, b, overlap) => {
    expect(cidrsOverlap(cidr(a), cidr(b))).toBe(overlap);
  });
});

describe('firstHost and isNetworkOrBroadcast', () => {
  it('puts the bridge on .1 of a pod CIDR', () => {
    expect(firstHost(cidr('10.244.0.0/24'))).toBe('10.244.0.1');
    expect(firstHost(cidr('10.244.1.0/24'))).toBe('10.244.1.1');
    expect(firstHost(cidr('10.244.2.128/25'))).toBe('10.244.2.129');
    expect(firstHost(cidr('192.168.0.0/16'))).toBe('192.168.0.1');
  });

  it('knows the network and broadcast addresses', () => {
    const c = cidr('10.240.0.0/24');
    expect(isNetworkOrBroadcast(c, ip('10.240.0.0'))).toBe(true);
    expect(isNetworkOrBroadcast(c, ip('10.240.0.255'))).toBe(true);
    expect(isNetworkOrBroadcast(c, ip('10.240.0.1'))).toBe(false);
    expect(isNetworkOrBroadcast(c, ip('10.240.0.254'))).toBe(false);
    expect(isNetworkOrBroadcast(cidr('10.244.0.0/16'), ip('10.244.255.255'))).toBe(true);
    expect(isNetworkOrBroadcast(cidr('10.244.0.0/16'), ip('10.244.0.255'))).toBe(false);
    expect(isNetworkOrBroadcast(cidr('192.168.0.0/30'), ip('192.168.0.3'))).toBe(true);
    expect(isNetworkOrBroadcast(cidr('200.0.0.0/8'), ip('200.255.255.255'))).toBe(true);
  });

  it('has no network or broadcast address on /31 and /32 (RFC 3021)', () => {
    expect(isNetworkOrBroadcast(cidr('10.0.0.0/31'), ip('10.0.0.0'))).toBe(false);
    expect(isNetworkOrBroadcast(cidr('10.0.0.0/31'), ip('10.0.0.1'))).toBe(false);
    expect(isNetworkOrBroadcast(cidr('10.0.0.7/32'), ip('10.0.0.7'))).toBe(false);
  });
});
