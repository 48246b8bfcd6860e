import { describe, expect, it } from 'vitest';
import { clock, formatLine, OrderedStream, parseTcpdumpLine } from '../../lab/capture/stream.js';

/** lab capture's merging of several tcpdumps into one time-ordered stream. */

describe('tcpdump lines', () => {
  it('reads the epoch stamp and the decoded packet of one interface', () => {
    const l = parseTcpdumpLine('node1', 'eth0', '1795986956.018074 IP 10.240.0.4.30301 > 10.244.1.2.8443: Flags [S], seq 1, length 0');
    expect(l).toEqual({ point: 'node1:eth0', time: 1795986956.018074, text: 'IP 10.240.0.4.30301 > 10.244.1.2.8443: Flags [S], seq 1, length 0' });
  });
  it('takes the interface from tcpdump -i any', () => {
    expect(parseTcpdumpLine('node1', undefined, '1795986956.5 cbr0  Out IP 10.244.0.1.5 > 10.244.0.3.8443: Flags [S]')).toMatchObject({ point: 'node1:cbr0', text: 'Out IP 10.244.0.1.5 > 10.244.0.3.8443: Flags [S]' });
  });
  it('ignores what is not a packet line', () => {
    expect(parseTcpdumpLine('node1', 'eth0', 'tcpdump: verbose output suppressed')).toBeUndefined();
  });
  it('prints local time to the microsecond, points aligned', () => {
    expect(clock(1795986956.018074)).toMatch(/^\d\d:\d\d:\d\d\.018074$/);
    expect(formatLine({ point: 'web-2:eth0', time: 1, text: 'IP x > y' }, 12)).toMatch(/^\d\d:\d\d:01\.000000 web-2:eth0 {3}IP x > y$/);
  });
});

describe('ordered stream', () => {
  const line = (point: string, time: number) => ({ point, time, text: `${point} ${time}` });
  it('releases lines in capture order, whatever pipe brought them first', () => {
    const s = new OrderedStream(100);
    s.push(line('node2:eth0', 10.002), 0);
    s.push(line('client:eth0', 10.0), 5);
    s.push(line('node1:eth0', 10.001), 6);
    expect(s.release(50)).toEqual([]);
    expect(s.release(106).map((l) => l.point)).toEqual(['client:eth0', 'node1:eth0', 'node2:eth0']);
  });
  it('holds a line until its window passed, but never lets an earlier capture wait behind it', () => {
    const s = new OrderedStream(100);
    s.push(line('a', 2), 0);
    s.push(line('b', 1), 90);
    // a's window passed at 100; b was captured before a, so it goes first, with it.
    expect(s.release(100).map((l) => l.point)).toEqual(['b', 'a']);
    s.push(line('c', 3), 150);
    expect(s.release(200)).toEqual([]);
    expect(s.release(200, true).map((l) => l.point)).toEqual(['c']);
  });
});
