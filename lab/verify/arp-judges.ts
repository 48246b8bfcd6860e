import { describeArp, isGratuitous, type ArpPacket } from '../capture/arp.js';
import type { Evidence } from './evidence.js';
import type { Flow } from './flows.js';

/**
 * The judges of MetalLB's layer-2 mode, pure: all of an IP's traffic entering one node, the ARP
 * exchange that sends it there, and the gratuitous ARP that moves it on a takeover.
 */

interface Verdict {
  ok: boolean;
  expected: string;
  seen: string;
}

const verdict = (ok: boolean, expected: string, seen: string): Verdict => ({ ok, expected, seen });

/** Every answered request of the traffic was translated by `node`. */
export function judgeAllVia(node: string, groupFlows: Flow[]): Verdict {
  const answered = groupFlows.filter((f) => f.answer);
  const counts = new Map<string, number>();
  for (const f of answered) counts.set(f.conntrack?.node ?? '(not found)', (counts.get(f.conntrack?.node ?? '(not found)') ?? 0) + 1);
  const seen = [...counts].map(([n, c]) => `${c} via ${n}`).join(', ') || 'no answered request';
  return verdict(answered.length > 0 && counts.size === 1 && counts.has(node), `all ${answered.length} answered requests entered ${node} (its conntrack holds them)`, seen);
}

type Macs = Evidence['macs'];
const macsOf = (macs: Macs, host: string) => macs?.[host] ?? [];
const ownerOf = (macs: Macs, mac: string) => Object.entries(macs ?? {}).find(([, m]) => m.includes(mac))?.[0];
const named = (macs: Macs, mac: string) => `${mac}${ownerOf(macs, mac) ? ` (${ownerOf(macs, mac)})` : ''}`;

/** At one capture point: `asker` asked who has `ip`, `answeredBy` answered it with its MAC, and no other MAC answered for `ip`. */
export function judgeArp(e: { ip: string; asker: string; answeredBy: string }, packets: ArpPacket[] | undefined, macs: Macs): Verdict {
  const asker = macsOf(macs, e.asker);
  const leader = macsOf(macs, e.answeredBy);
  // An IPv6 address is resolved by neighbour discovery (ICMPv6 solicitation and advertisement), IPv4's by ARP.
  const ndp = e.ip.includes(':');
  const [askWord, answerWord, what] = ndp ? ['neighbor solicitation', 'neighbor advertisement', 'NDP'] : ['who-has', 'is-at', 'ARP'];
  const expected = `${askWord}${ndp ? ' for' : ''} ${e.ip} from ${e.asker}, ${answerWord} ${leader.join('/') || '(no MAC read)'} (${e.answeredBy}) to it, no other answer`;
  if (!packets) return verdict(false, expected, `${what} was not captured here`);
  const ask = packets.find((p) => p.op === 'who-has' && !isGratuitous(p) && p.targetIp === e.ip && asker.includes(p.senderMac));
  const answers = packets.filter((p) => p.op === 'is-at' && p.senderIp === e.ip);
  const reply = ask && answers.find((p) => p.time >= ask.time && leader.includes(p.senderMac) && p.targetMac === ask.senderMac);
  const others = answers.filter((p) => !leader.includes(p.senderMac));
  if (!ask) {
    const any = packets.filter((p) => p.targetIp === e.ip || p.senderIp === e.ip);
    const mine = packets.filter((p) => Boolean(p.ndp) === ndp);
    return verdict(false, expected, `no ${askWord} for ${e.ip} from ${e.asker}${any.length ? `; ${any.length} other ${what} packets for it: ${describeArp(any[0]!)}` : ` (${mine.length} ${what} packets captured)`}`);
  }
  if (!reply) return verdict(false, expected, `${describeArp(ask)}, answered by ${answers.length ? answers.map((p) => named(macs, p.senderMac)).join(', ') : 'nobody'}`);
  const ms = Math.round((reply.time - ask.time) * 1000 * 10) / 10;
  const seen = `${describeArp(ask)}; ${ndp ? `advertised ${e.ip}` : e.ip} is-at ${named(macs, reply.senderMac)} ${ms} ms later${others.length ? `; also is-at ${others.map((p) => named(macs, p.senderMac)).join(', ')}` : ''}`;
  return verdict(others.length === 0, expected, seen);
}

/** The lab's last takeover: `from` announced `ip` with a gratuitous ARP, and `moves`'s entry went to `from`'s MAC without it asking. */
export function judgeGratuitousArp(e: { ip: string; from: string; moves: string }, takeover: Evidence['takeover'], macs: Macs): Verdict {
  const leader = macsOf(macs, e.from);
  const asker = macsOf(macs, e.moves);
  const expected = `gratuitous ARP ${e.ip} is-at ${leader.join('/') || '(no MAC read)'} (${e.from}); ${e.moves}'s entry moved to it without a who-has`;
  if (!takeover) return verdict(false, expected, 'no layer-2 takeover recorded for this lab (a lab kill, revive or scale that moves the IP records one)');
  const move = takeover.moves.find((m) => m.ip === e.ip);
  if (!move) return verdict(false, expected, `the last takeover (${takeover.when}) moved ${takeover.moves.map((m) => m.ip).join(', ')}, not ${e.ip}`);
  const all = Object.values(takeover.packets).flat();
  const announce = all.find((p) => isGratuitous(p) && p.senderIp === e.ip && leader.includes(p.senderMac));
  const asked = all.filter((p) => p.op === 'who-has' && !isGratuitous(p) && p.targetIp === e.ip && asker.includes(p.senderMac));
  const before = takeover.before[e.moves]?.[e.ip];
  const after = takeover.after[e.moves]?.[e.ip];
  const moved = before !== undefined && !leader.includes(before) && after !== undefined && leader.includes(after);
  const ms = takeover.ms[e.moves];
  // Linux takes a gratuitous ARP only to update an entry it has (arp_accept 0): with none, nothing moved.
  const why = before === undefined ? ` (${e.moves} had no entry for it before: nobody had asked since it was forgotten, so the announcement had nothing to move; send traffic first, e.g. lab verify)` : '';
  const parts = [
    `takeover ${takeover.when}: ${move.from ?? 'nobody'} → ${move.to ?? 'nobody'}`,
    announce ? describeArp(announce) : `no gratuitous ARP for ${e.ip} from ${e.from} (${all.length} ARP packets captured)`,
    `${e.moves}'s entry ${before ? named(macs, before) : 'absent'} → ${after ? named(macs, after) : 'absent'}${ms !== undefined ? ` in ${ms} ms` : ''}${why}`,
    asked.length ? `${e.moves} asked: ${describeArp(asked[0]!)}` : `${e.moves} sent no who-has for it`,
  ];
  return verdict(Boolean(announce) && moved && asked.length === 0 && move.to === e.from, expected, parts.join('; '));
}
