import type { Step, WalkthroughPath } from '../walkthrough.js';
import type { WayIn } from './ways-in.js';

/**
 * A UDP Service port's path: the same hops, translation and conntrack reversal as over TCP,
 * proven the same way, but each request is one datagram and its answer one datagram back (no
 * handshake, so no flags to match), sent with `protocol: UDP`. Pure.
 */
export function udpPath(way: WayIn, p: WalkthroughPath): WalkthroughPath {
  if (way.port.protocol !== 'UDP') return p;
  const steps = p.steps.map((s): Step => {
    const packet = s.expect?.packet;
    const title = s.title.replace('opens a connection to', 'sends a datagram to').replace('opens connections to', 'sends datagrams to').replace(' sees the reply come from ', ' sees the answer come from ');
    if (!packet) return { ...s, title };
    const { flags: _flags, ...rest } = packet;
    return { ...s, title, expect: { ...s.expect, packet: rest } };
  });
  return { ...p, steps, traffic: { ...p.traffic!, protocol: 'UDP' } };
}
