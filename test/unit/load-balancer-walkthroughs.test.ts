import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeArp, parseArpFrame, parseArpPcap, type ArpPacket } from '../../lab/capture/arp.js';
import { parsePcap } from '../../lab/capture/pcap.js';
import type { TakeoverRecord } from '../../lab/capture/takeover.js';
import { TOPOLOGIES_DIR } from '../../lab/topology/paths.js';
import { loadTopology } from '../../lab/topology/load.js';
import { judgeAllVia, judgeArp, judgeGratuitousArp } from '../../lab/verify/arp-judges.js';
import type { Flow } from '../../lab/verify/flows.js';
import { modeWalkthroughName, walkthroughInMode } from '../../lab/verify/mode-walkthrough.js';
import { loadWalkthrough } from '../../lab/verify/walkthrough.js';
import { arpFrame } from '../../lab/workload/arp-speaker.js';
import { pcapOf, problemsOf } from './helpers.js';

const mac = (s: string) => Buffer.from(s.split(':').map((h) => parseInt(h, 16)));
const ROUTER = '02:00:0a:f0:00:01';
const NODE1 = '02:00:0a:f0:00:04';
const NODE2 = '02:00:0a:f0:00:05';
const BROADCAST = 'ff:ff:ff:ff:ff:ff';
const ZERO = '00:00:00:00:00:00';
const macs = { router: [ROUTER, '02:00:0a:f1:00:01'], node1: [NODE1], node2: [NODE2] };

const whoHas = (time: number, from = ROUTER, fromIp = '10.240.0.1'): ArpPacket => ({ time, op: 'who-has', srcMac: from, dstMac: BROADCAST, senderMac: from, senderIp: fromIp, targetMac: ZERO, targetIp: '10.240.0.100' });
const isAt = (time: number, by: string, to = ROUTER): ArpPacket => ({ time, op: 'is-at', srcMac: by, dstMac: to, senderMac: by, senderIp: '10.240.0.100', targetMac: to, targetIp: '10.240.0.1' });
const gratuitous = (time: number, by: string): ArpPacket => ({ time, op: 'who-has', srcMac: by, dstMac: BROADCAST, senderMac: by, senderIp: '10.240.0.100', targetMac: ZERO, targetIp: '10.240.0.100' });


describe('ARP read from a capture (lab/capture/arp.ts)', () => {
  const ask = arpFrame({ dstMac: mac(BROADCAST), srcMac: mac(ROUTER), op: 1, senderMac: mac(ROUTER), senderIp: '10.240.0.1', targetMac: mac(ZERO), targetIp: '10.240.0.100' });
  const answer = arpFrame({ dstMac: mac(ROUTER), srcMac: mac(NODE1), op: 2, senderMac: mac(NODE1), senderIp: '10.240.0.100', targetMac: mac(ROUTER), targetIp: '10.240.0.1' });
  const announce = arpFrame({ dstMac: mac(BROADCAST), srcMac: mac(NODE2), op: 1, senderMac: mac(NODE2), senderIp: '10.240.0.100', targetMac: mac(ZERO), targetIp: '10.240.0.100' });

  it("decodes the speaker's own frames: who-has, is-at, and a gratuitous announcement", () => {
    expect(parseArpFrame(ask)).toMatchObject({ op: 'who-has', senderMac: ROUTER, senderIp: '10.240.0.1', targetIp: '10.240.0.100', dstMac: BROADCAST });
    expect(describeArp(parseArpFrame(answer)!)).toBe(`10.240.0.100 is-at ${NODE1} (to ${ROUTER})`);
    expect(describeArp(parseArpFrame(announce)!)).toBe(`gratuitous ARP 10.240.0.100 is-at ${NODE2} (request to ${BROADCAST})`);
  });

  it('reads them from a pcap with their times; the TCP reader skips them; other frames are no ARP', () => {
    const pcap = pcapOf([ask, answer, announce]);
    expect(parseArpPcap(pcap).map((p) => [p.op, p.senderMac, Math.round((p.time - 1_800_000_000) * 1000)])).toEqual([['who-has', ROUTER, 0], ['is-at', NODE1, 1], ['who-has', NODE2, 2]]);
    expect(parsePcap(pcap)).toEqual([]);
    const ipv4 = Buffer.from(ask);
    ipv4.writeUInt16BE(0x0800, 12);
    expect(parseArpFrame(ipv4)).toBeUndefined();
    expect(parseArpFrame(ask.subarray(0, 41))).toBeUndefined();
  });
});

describe('the arp check: who asked, and which MAC answered', () => {
  const e = { ip: '10.240.0.100', asker: 'router', answeredBy: 'node1' };
  it("passes when the router's who-has is answered by the leader's MAC, and names both", () => {
    const v = judgeArp(e, [whoHas(1), isAt(1.002, NODE1)], macs);
    expect(v.ok).toBe(true);
    expect(v.seen).toBe(`who-has 10.240.0.100 tell 10.240.0.1 (${ROUTER}); 10.240.0.100 is-at ${NODE1} (node1) 2 ms later`);
  });
  it('fails when another node answers too, when only another node answers, when nobody asked, when ARP was not captured', () => {
    expect(judgeArp(e, [whoHas(1), isAt(1.001, NODE1), isAt(1.001, NODE2)], macs)).toMatchObject({ ok: false, seen: expect.stringContaining(`also is-at ${NODE2} (node2)`) });
    expect(judgeArp(e, [whoHas(1), isAt(1.001, NODE2)], macs)).toMatchObject({ ok: false, seen: expect.stringContaining(`answered by ${NODE2} (node2)`) });
    expect(judgeArp(e, [isAt(1.001, NODE1)], macs)).toMatchObject({ ok: false, seen: expect.stringMatching(/^no who-has for 10\.240\.0\.100 from router/) });
    expect(judgeArp(e, undefined, macs).seen).toBe('ARP was not captured here');
  });
  it('an answer before the question, or a gratuitous ARP, is not the answer to it', () => {
    expect(judgeArp(e, [isAt(0.5, NODE1), whoHas(1)], macs).ok).toBe(false);
    expect(judgeArp(e, [gratuitous(0.5, NODE1)], macs).ok).toBe(false);
  });
});

describe('the gratuitousArp check: the last takeover moved the entry without the router asking', () => {
  const e = { ip: '10.240.0.100', from: 'node2', moves: 'router' };
  const takeover = (packets: ArpPacket[], before: string | undefined, after: string | undefined, to = 'node2'): TakeoverRecord & { packets: Record<string, ArpPacket[]> } => ({
    when: '2026-12-07T11:00:00.000Z',
    moves: [{ ip: '10.240.0.100', from: 'node1', to }],
    before: { router: { '10.240.0.100': before } },
    after: { router: { '10.240.0.100': after } },
    ms: { router: 31 },
    captures: { 'router:br-nodes': 'takeover-router-br-nodes.pcap' },
    packets: { 'router:br-nodes': packets },
  });
  it("passes on node2's announcement and the entry moving node1 → node2 unasked", () => {
    const v = judgeGratuitousArp(e, takeover([gratuitous(1, NODE2)], NODE1, NODE2), macs);
    expect(v.ok).toBe(true);
    expect(v.seen).toContain(`router's entry ${NODE1} (node1) → ${NODE2} (node2) in 31 ms; router sent no who-has for it`);
  });
  it('fails when the router asked, when no announcement was captured, when the entry did not exist before, when another node took over, when none was recorded', () => {
    expect(judgeGratuitousArp(e, takeover([gratuitous(1, NODE2), whoHas(1.1)], NODE1, NODE2), macs).ok).toBe(false);
    expect(judgeGratuitousArp(e, takeover([], NODE1, NODE2), macs).ok).toBe(false);
    expect(judgeGratuitousArp(e, takeover([gratuitous(1, NODE2)], undefined, undefined), macs)).toMatchObject({ ok: false, seen: expect.stringContaining('had no entry for it before') });
    expect(judgeGratuitousArp(e, takeover([gratuitous(1, NODE2)], NODE1, NODE2, 'node3'), macs).ok).toBe(false);
    expect(judgeGratuitousArp(e, undefined, macs)).toMatchObject({ ok: false, seen: expect.stringMatching(/^no layer-2 takeover recorded/) });
  });
});

describe('the allVia check: all of the traffic entered one node', () => {
  const flow = (i: number, node: string | undefined, answered = true): Flow => ({ index: i, group: 'g', from: 'client', client: `10.241.0.4:${10000 + i}`, target: '10.240.0.100:443', ...(answered ? { answer: { pod: 'web-1', node: 'node1', podIP: '10.244.0.3', port: 8443, client: '' } } : {}), ...(node ? { conntrack: { node, entry: {} as never } } : {}) });
  it('passes when every answered request was translated there, and fails on one elsewhere or none at all', () => {
    expect(judgeAllVia('node1', [flow(1, 'node1'), flow(2, 'node1'), flow(3, undefined, false)])).toMatchObject({ ok: true, seen: '2 via node1' });
    expect(judgeAllVia('node1', [flow(1, 'node1'), flow(2, 'node2')])).toMatchObject({ ok: false, seen: '1 via node1, 1 via node2' });
    expect(judgeAllVia('node1', []).ok).toBe(false);
  });
});

describe("a load balancer mode's own walkthrough (lab/verify/mode-walkthrough.ts)", () => {
  it('is named after the topology\'s, with the mode before the suffix; static keeps the file\'s', () => {
    expect(modeWalkthroughName('loadbalancer-local.walkthrough.yaml', 'bgp')).toBe('loadbalancer-local-bgp.walkthrough.yaml');
    expect(modeWalkthroughName('loadbalancer.walkthrough.yaml', 'l2')).toBe('loadbalancer-l2.walkthrough.yaml');
    expect(modeWalkthroughName('loadbalancer.walkthrough.yaml', 'static')).toBe('loadbalancer.walkthrough.yaml');
  });
  for (const scenario of ['loadbalancer', 'loadbalancer-local']) {
    for (const mode of ['bgp', 'l2'] as const) {
      it(`${scenario} in mode ${mode}: ${scenario}-${mode} is picked, and it loads against the topology in every pod network mode`, () => {
        const { topology, path } = loadTopology(scenario, { 'loadBalancer.mode': mode });
        const t = walkthroughInMode(topology, path);
        expect(t.walkthrough).toBe(`${scenario}-${mode}.walkthrough.yaml`);
        for (const podNetwork of ['routed', 'host-gw', 'vxlan', 'bgp']) {
          const { topology: tp, path: pp } = loadTopology(scenario, { 'loadBalancer.mode': mode, 'podNetwork.mode': podNetwork });
          expect(loadWalkthrough(walkthroughInMode(tp, pp), pp).walkthrough.paths.length).toBeGreaterThan(0);
        }
      });
    }
  }
  it('a mode without its own file keeps the topology\'s walkthrough', () => {
    const { topology, path } = loadTopology('loadbalancer-local', { 'loadBalancer.mode': 'static' });
    expect(walkthroughInMode(topology, path).walkthrough).toBe('loadbalancer-local.walkthrough.yaml');
    expect(walkthroughInMode({ ...topology, loadBalancer: { mode: 'bgp' } }, path, () => false).walkthrough).toBe('loadbalancer-local.walkthrough.yaml');
  });
});

describe('arp steps: bad input refused at the line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lab-arp-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it('an asker that is no host, a point that is not observed, a gratuitousArp from a non-node', () => {
    const { topology } = loadTopology('loadbalancer-local', { 'loadBalancer.mode': 'l2' });
    const file = join(dir, 'bad.walkthrough.yaml');
    writeFileSync(
      file,
      [
        'title: bad',
        'traffic: { from: client, to: "10.240.0.100:443" }',
        'observe: [client:eth0]',
        'paths:',
        '  - name: p',
        '    endpoint: web-1',
        '    steps:',
        '      - { step: "1", title: a, at: router:br-nodes, expect: { arp: { ip: 10.240.0.100, asker: nobody, answeredBy: node1 } } }',
        '      - { step: "2", title: b, expect: { gratuitousArp: { ip: 10.240.0.100, from: client, moves: router } } }',
        '      - { step: "3", title: c, expect: { allVia: web-1 } }',
        '',
      ].join('\n'),
    );
    const problems = problemsOf(() => loadWalkthrough({ ...topology, walkthrough: file }, join(TOPOLOGIES_DIR, 'x.yaml')));
    expect(problems.map((p) => `${p.line} ${p.field}: ${p.message}`)).toEqual([
      '8 paths[0].steps[0].at: "router:br-nodes" is not one of the observation points in `observe`',
      '8 paths[0].steps[0].expect.arp.asker: no host named "nobody" in the topology',
      '9 paths[0].steps[1].expect.gratuitousArp.from: "client" is not a node of this topology',
      '10 paths[0].steps[2].expect.allVia: "web-1" is not a node of this topology',
    ]);
  });
});
