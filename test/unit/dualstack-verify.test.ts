import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseArpFrame, parseArpPcap, parseNdpFrame, describeArp, isGratuitous } from '../../lab/capture/arp.js';
import { describePacket, parsePcap } from '../../lab/capture/pcap.js';
import { loadTopology } from '../../lab/topology/load.js';
import { splitHostPort } from '../../lab/util/ipv6.js';
import { summarise, type VerifyResult } from '../../lab/verify/engine.js';
import { loadEvidence, type Evidence } from '../../lab/verify/evidence.js';
import { flowVariables, formatPattern, packetInFlow, resolvePattern, senderAddress, splitAddress, type Flow } from '../../lab/verify/flows.js';
import { judgeArp } from '../../lab/verify/arp-judges.js';
import { curlRemote } from '../../lab/verify/traffic.js';
import { loadWalkthrough } from '../../lab/verify/walkthrough.js';
import { pcapOf, problemsOf } from './helpers.js';

/**
 * The verify engine over IPv6 (docs/dualstack.md): address:port forms, IPv6 TCP and NDP read from
 * pcaps, and a saved run of the dualstack lab (test/fixtures/runs/dualstack, iptables mode, real
 * kernel) judged again and then changed to make its IPv6 steps fail.
 */

const RUN = join(import.meta.dirname, '..', 'fixtures', 'runs', 'dualstack');

describe('address forms', () => {
  it('reads [ip]:port, [ip]:*, [ip] and a bare IPv6 address; IPv4 as before', () => {
    expect(resolvePattern('[fd00:10:240::4]:32000', {})).toEqual({ ip: 'fd00:10:240::4', port: 32000 });
    expect(resolvePattern('[fd00:10:240::4]:*', {})).toEqual({ ip: 'fd00:10:240::4', port: undefined });
    expect(resolvePattern('[fd00:10:240::4]', {})).toEqual({ ip: 'fd00:10:240::4', port: undefined });
    expect(resolvePattern('fd00:172:31::5', {})).toEqual({ ip: 'fd00:172:31::5' });
    expect(resolvePattern('10.240.0.4:32000', {})).toEqual({ ip: '10.240.0.4', port: 32000 });
    expect(resolvePattern('10.240.0.4', {})).toEqual({ ip: '10.240.0.4', port: undefined });
    const vars = { client: '[fd00:10:241::4]:14873', snat: '[fd00:10:240::4]:45163' };
    expect(resolvePattern('$client', vars)).toEqual({ ip: 'fd00:10:241::4', port: 14873 });
    expect(resolvePattern('$snat.ip', vars)).toEqual({ ip: 'fd00:10:240::4' });
    expect(formatPattern({ ip: 'fd00:10:240::4' }, '')).toBe('[fd00:10:240::4]:*');
    expect(formatPattern({ ip: 'fd00:10:240::4', port: 32000 }, '')).toBe('[fd00:10:240::4]:32000');
    expect(formatPattern({ ip: '10.240.0.4' }, '')).toBe('10.240.0.4:*');
  });

  it('splits ip:port back into its parts, and takes curl\'s unbracketed remote', () => {
    expect(splitHostPort('[fd00:10:244:1::2]:8443')).toEqual({ ip: 'fd00:10:244:1::2', port: 8443 });
    expect(splitAddress('10.244.1.2:8443')).toEqual({ ip: '10.244.1.2', port: 8443 });
    expect(curlRemote('fd00:10:240::4:32000')).toBe('[fd00:10:240::4]:32000');
    expect(curlRemote('10.240.0.4:32000')).toBe('10.240.0.4:32000');
    expect(curlRemote(':0')).toBeUndefined();
    expect(curlRemote('')).toBeUndefined();
  });

  it('sends IPv6 traffic from the sender\'s IPv6 address, and its flow variables keep the brackets', () => {
    const client = { address: '10.241.0.4', address6: 'fd00:10:241::4' };
    expect(senderAddress(client, '[fd00:10:240::4]:32000')).toBe('fd00:10:241::4');
    expect(senderAddress(client, '10.240.0.4:32000')).toBe('10.241.0.4');
    expect(senderAddress({ address: '10.241.0.4' }, '[fd00:10:240::4]:32000')).toBeUndefined();
    const flow: Flow = {
      index: 0,
      group: 'g',
      from: 'client',
      client: '[fd00:10:241::4]:14873',
      target: '[fd00:10:240::4]:32000',
      conntrack: { node: 'node1', entry: { protocol: 'tcp', state: 'TIME_WAIT', original: { src: 'fd00:10:241::4', dst: 'fd00:10:240::4', sport: 14873, dport: 32000 }, reply: { src: 'fd00:10:244:1::2', dst: 'fd00:10:240::4', sport: 8443, dport: 45163 }, text: '' } },
    };
    expect(flowVariables(flow)).toMatchObject({ pod: '[fd00:10:244:1::2]:8443', snat: '[fd00:10:240::4]:45163' });
    expect(packetInFlow({ src: 'fd00:10:240::4', sport: 45163, dst: 'fd00:10:244:1::2', dport: 8443 }, flow)).toBe(true);
    expect(packetInFlow({ src: 'fd00:10:240::4', sport: 45164, dst: 'fd00:10:244:1::2', dport: 8443 }, flow)).toBe(false);
  });
});

/** An Ethernet frame: dst MAC, src MAC, ethertype, then the payload. */
const ether = (dst: string, src: string, type: number, payload: Buffer) => Buffer.concat([Buffer.from(dst.split(':').join(''), 'hex'), Buffer.from(src.split(':').join(''), 'hex'), Buffer.from([type >> 8, type & 255]), payload]);
const v6 = (text: string) => {
  const [head, tail = ''] = text.split('::');
  const groups = (s: string) => (s ? s.split(':') : []);
  const all = [...groups(head!), ...Array(8 - groups(head!).length - groups(tail).length).fill('0'), ...groups(tail)];
  return Buffer.from(all.map((g) => g.padStart(4, '0')).join(''), 'hex');
};
const ipv6Header = (next: number, payloadLength: number, src: string, dst: string) => {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(payloadLength, 4);
  h[6] = next;
  h[7] = 64;
  v6(src).copy(h, 8);
  v6(dst).copy(h, 24);
  return h;
};
const ROUTER = '02:00:0a:f0:00:01';
const NODE1 = 'ce:73:ee:0c:4f:ec';

describe('IPv6 in the pcap reader', () => {
  it('reads IPv6 TCP, past a hop-by-hop extension header, in RFC 5952 text', () => {
    const tcp = Buffer.alloc(20);
    tcp.writeUInt16BE(14873, 0);
    tcp.writeUInt16BE(32000, 2);
    tcp[12] = 5 << 4;
    tcp[13] = 0x02;
    const hopByHop = Buffer.from([6, 0, 1, 4, 0, 0, 0, 0]); // next header TCP, 8 bytes, a PadN
    const frame = ether(NODE1, ROUTER, 0x86dd, Buffer.concat([ipv6Header(0, 28, 'fd00:10:241::4', 'fd00:10:240::4'), hopByHop, tcp]));
    const [p] = parsePcap(pcapOf([frame]));
    expect(p).toMatchObject({ src: 'fd00:10:241::4', dst: 'fd00:10:240::4', sport: 14873, dport: 32000, flags: 'S', payloadLength: 0, ipLength: 68, dstMac: NODE1, srcMac: ROUTER });
    expect(describePacket(p!)).toBe('[fd00:10:241::4]:14873 > [fd00:10:240::4]:32000 [S]');
  });

  it('reads neighbour solicitation and advertisement in ARP\'s words, with their link-layer options', () => {
    const ns = Buffer.alloc(32);
    ns[0] = 135;
    v6('fd00:10:240::4').copy(ns, 8);
    ns[24] = 1; // source link-layer address
    ns[25] = 1;
    Buffer.from(ROUTER.split(':').join(''), 'hex').copy(ns, 26);
    const solicit = ether('33:33:ff:00:00:04', ROUTER, 0x86dd, Buffer.concat([ipv6Header(58, 32, 'fe80::aff:fef0:1', 'ff02::1:ff00:4'), ns]));
    const na = Buffer.alloc(32);
    na[0] = 136;
    na[4] = 0x60; // solicited, override
    v6('fd00:10:240::4').copy(na, 8);
    na[24] = 2; // target link-layer address
    na[25] = 1;
    Buffer.from(NODE1.split(':').join(''), 'hex').copy(na, 26);
    const advert = ether(ROUTER, NODE1, 0x86dd, Buffer.concat([ipv6Header(58, 32, 'fd00:10:240::4', 'fe80::aff:fef0:1'), na]));
    expect(parseArpFrame(solicit)).toBeUndefined();
    const [ask, answer] = parseArpPcap(pcapOf([solicit, advert]));
    expect(ask).toMatchObject({ op: 'who-has', senderMac: ROUTER, senderIp: 'fe80::aff:fef0:1', targetIp: 'fd00:10:240::4', ndp: {} });
    expect(answer).toMatchObject({ op: 'is-at', senderMac: NODE1, senderIp: 'fd00:10:240::4', targetMac: ROUTER, ndp: { solicited: true } });
    expect(describeArp(ask!)).toBe(`neighbor solicitation, who has fd00:10:240::4 (from fe80::aff:fef0:1, ${ROUTER})`);
    expect(describeArp(answer!)).toBe(`neighbor advertisement, tgt is fd00:10:240::4 is-at ${NODE1} (to ${ROUTER})`);
    expect(isGratuitous(answer!)).toBe(false);
    const unsolicited = Buffer.from(advert);
    unsolicited[14 + 40 + 4] = 0x20;
    expect(isGratuitous(parseNdpFrame(unsolicited)!)).toBe(true);
    const macs = { router: [ROUTER], node1: [NODE1], node2: ['aa:aa:aa:aa:aa:aa'] };
    const e = { ip: 'fd00:10:240::4', asker: 'router', answeredBy: 'node1' };
    expect(judgeArp(e, [ask!, answer!], macs)).toMatchObject({ ok: true, expected: `neighbor solicitation for fd00:10:240::4 from router, neighbor advertisement ${NODE1} (node1) to it, no other answer` });
    expect(judgeArp({ ...e, answeredBy: 'node2' }, [ask!, answer!], macs).ok).toBe(false);
    expect(judgeArp(e, [answer!], macs)).toMatchObject({ ok: false, seen: expect.stringMatching(/^no neighbor solicitation for fd00:10:240::4 from router; 1 other NDP packets for it/) });
  });
});

function saved(): { evidence: Evidence; result: VerifyResult; judge: (e: Evidence) => VerifyResult } {
  const { topology, path } = loadTopology('dualstack');
  const { walkthrough: w } = loadWalkthrough(topology, path);
  const evidence = loadEvidence(RUN);
  const result = JSON.parse(readFileSync(join(RUN, 'report.json'), 'utf8')) as VerifyResult;
  return { evidence, result, judge: (e) => summarise(topology, w, RUN, e, 0) };
}
const failedSteps = (r: VerifyResult) => r.paths.flatMap((p) => p.steps.filter((s) => s.status === 'fail').map((s) => `${p.name} ${s.step} ${s.title}`));

describe('a saved dualstack run (real kernel, iptables mode), judged again', () => {
  it('passes every step of both families, as it did when it ran', () => {
    const { evidence, result, judge } = saved();
    const again = judge(evidence);
    expect(again.failed).toBe(0);
    expect(again.passed).toBe(52);
    expect(again.paths.map((p) => p.steps.map((s) => [s.step, s.status, s.seen]))).toEqual(result.paths.map((p) => p.steps.map((s) => [s.step, s.status, s.seen])));
    const ndp = again.paths.find((p) => p.name === 'cross-node over IPv6')!.steps[0]!;
    expect(ndp.seen).toMatch(/^neighbor solicitation, who has fd00:10:240::4 \(from fe80::[0-9a-f:]+, 02:00:0a:f0:00:01\); advertised fd00:10:240::4 is-at [0-9a-f:]+ \(node1\)/);
  });

  it('fails the IPv6 DNAT step when the ip6tables counter did not rise, and only that step', () => {
    const { evidence, judge } = saved();
    const e = structuredClone(evidence);
    e.dnatAfter.node1!['[fd00:10:244:1::2]:8443'] = e.dnatBefore.node1!['[fd00:10:244:1::2]:8443'] ?? 0;
    expect(failedSteps(judge(e))).toEqual(["cross-node over IPv6 1.2.1 kube-proxy's IPv6 DNAT rule toward the pod counted the connection"]);
    delete e.dnatAfter.node1!['[fd00:10:244:1::2]:8443'];
    const step = judge(e).paths.find((p) => p.name === 'cross-node over IPv6')!.steps.find((s) => s.step === '1.2.1' && s.at === 'node1')!;
    expect(step).toMatchObject({ status: 'fail', seen: 'no such rule', expected: 'DNAT --to-destination [fd00:10:244:1::2]:8443 counts this connection' });
  });

  it('fails the NDP step without the advertisement, and the IPv6 SNAT step without its packet', () => {
    const { evidence, judge } = saved();
    const e = structuredClone(evidence);
    e.arp!['router:br-nodes'] = e.arp!['router:br-nodes']!.filter((p) => !(p.ndp && p.op === 'is-at'));
    expect(failedSteps(judge(e))).toEqual(['cross-node over IPv6 1.1 The router asks for node1\'s IPv6 address by NDP (neighbour solicitation), and node1 advertises it']);
    const f = structuredClone(evidence);
    f.packets['node1:eth0'] = f.packets['node1:eth0']!.filter((p) => !(p.src === 'fd00:10:240::4' && p.dst === 'fd00:10:244:1::2'));
    expect(failedSteps(judge(f))).toEqual(["cross-node over IPv6 1.2.2 The source is translated to node1's IPv6 address (SNAT)"]);
  });

  it('the IPv6 ClusterIP on a packet of other traffic fails the never step; the pod\'s own request to it does not', () => {
    const { evidence, judge } = saved();
    const never = (r: VerifyResult) => r.paths.find((p) => p.name === 'cross-node over IPv6')!.steps.find((s) => s.title.startsWith('The IPv6 ClusterIP'))!;
    expect(never(judge(evidence))).toMatchObject({ status: 'pass', seen: expect.stringMatching(/^absent from all \d+ captured packets, those of the \d+ requests? sent to it left aside$/) });
    const e = structuredClone(evidence);
    const syn = e.packets['client:eth0']!.find((p) => p.dst === 'fd00:10:240::4')!;
    e.packets['client:eth0']!.push({ ...syn, dst: 'fd00:172:31::5', dport: 443 });
    expect(never(judge(e))).toMatchObject({ status: 'fail', seen: expect.stringContaining('client:eth0: [fd00:10:241::4]:') });
  });
});

describe('an IPv6 walkthrough on a host without an IPv6 address', () => {
  it('is refused with file, line and field before anything is sent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'walk6-'));
    try {
      writeFileSync(join(dir, 'np.yaml'), readFileSync('topologies/nodeport.yaml', 'utf8').replace(/^walkthrough:.*$/m, 'walkthrough: w.yaml'));
      writeFileSync(join(dir, 'w.yaml'), ['title: t', 'traffic:', '  from: client', '  to: "[fd00:10:240::4]:32000"', 'observe: [client:eth0]', 'paths:', '  - name: p', '    endpoint: web-1', '    steps:', '      - { step: "1", title: x, at: client:eth0, expect: { packet: { src: $client, dst: "[fd00:10:240::4]:32000" } } }', ''].join('\n'));
      const { topology, path } = loadTopology(join(dir, 'np.yaml'));
      expect(problemsOf(() => loadWalkthrough(topology, path))).toEqual([expect.objectContaining({ field: 'traffic.to', line: 4, message: 'is an IPv6 destination, but "client" has no address6 to send from' })]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
