import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describePacket, parsePcap, PcapError } from '../../lab/capture/pcap.js';
import { parseConntrack } from '../../lab/kernel/conntrack.js';
import { isLabSourcePort, LAB_SOURCE_PORTS, nextSourcePort } from '../../lab/kernel/ports.js';
import { countersByJump, dnatCountersOf } from '../../lab/kernel/readers.js';
import { parseSave } from '../../lab/plan/kube-proxy/rules.js';
import { loadTopology } from '../../lab/topology/load.js';
import { summarise, type VerifyResult } from '../../lab/verify/engine.js';
import { loadEvidence, type Evidence } from '../../lab/verify/evidence.js';
import { packetInFlow, resolvePattern, flowVariables, type Flow } from '../../lab/verify/flows.js';
import { checkKind, flowJudges, groupJudges, judgeWalkthrough } from '../../lab/verify/judges.js';
import { flowFitsPath, flowsOfPaths, locateFlow, trafficGroups } from '../../lab/verify/paths.js';
import { NARROW_MAX, renderReport } from '../../lab/verify/report.js';
import { loadWalkthrough, type Walkthrough } from '../../lab/verify/walkthrough.js';

/**
 * The verify engine without root: saved runs of real labs (their pcaps and evidence.json, kept
 * under test/fixtures/runs) are read and judged again, and then changed to make steps fail.
 */

const RUNS = join(import.meta.dirname, '..', 'fixtures', 'runs');

function fixture(run: string, scenario: string, set: Record<string, string> = {}): { w: Walkthrough; evidence: Evidence; saved: VerifyResult } {
  const { topology, path } = loadTopology(scenario, set);
  const { walkthrough: w } = loadWalkthrough(topology, path);
  const evidence = loadEvidence(join(RUNS, run));
  const saved = JSON.parse(readFileSync(join(RUNS, run, 'report.json'), 'utf8')) as VerifyResult;
  return { w, evidence, saved };
}
const statuses = (r: { paths: { name: string; steps: { step: string; status: string }[] }[] }) => r.paths.map((p) => [p.name, p.steps.map((s) => `${s.step} ${s.status}`)]);
/** A deep copy to change without touching the shared fixture. */
const copy = (e: Evidence): Evidence => ({ ...structuredClone(e) });

describe('pcap reader', () => {
  it('reads the packets tcpdump wrote on node1 eth0 during a NodePort run', () => {
    const pkts = parsePcap(readFileSync(join(RUNS, 'nodeport', 'node1-eth0.pcap')));
    expect(pkts.length).toBeGreaterThan(3);
    // The client's SYN to the NodePort arrives, and leaves again translated toward web-2.
    expect(pkts.find((p) => p.flags === 'S')).toMatchObject({ src: '10.241.0.4', dst: '10.240.0.4', dport: 32000 });
    const syn = pkts.find((p) => p.flags === 'S' && p.dst === '10.244.1.2')!;
    expect(syn).toMatchObject({ src: '10.240.0.4', dport: 8443 });
    expect(describePacket(syn)).toMatch(/^10\.240\.0\.4:\d+ > 10\.244\.1\.2:8443 \[S\]$/);
    expect(pkts.some((p) => p.payload.startsWith('GET / HTTP/1.1'))).toBe(true);
    expect(pkts.map((p) => p.time)).toEqual([...pkts.map((p) => p.time)].sort((a, b) => a - b));
  });
  it('reads a hand-built Ethernet/IPv4/TCP frame field by field', () => {
    const header = Buffer.alloc(24);
    header.writeUInt32LE(0xa1b2c3d4, 0);
    header.writeUInt32LE(1, 20); // Ethernet
    const frame = Buffer.alloc(14 + 20 + 20);
    frame.writeUInt16BE(0x0800, 12);
    const ip = frame.subarray(14);
    ip[0] = 0x45;
    ip.writeUInt16BE(40, 2);
    ip[9] = 6;
    Buffer.from([10, 241, 0, 4, 10, 240, 0, 4]).copy(ip, 12);
    const tcp = ip.subarray(20);
    tcp.writeUInt16BE(40001, 0);
    tcp.writeUInt16BE(32000, 2);
    tcp.writeUInt32BE(7, 4);
    tcp[12] = 5 << 4;
    tcp[13] = 0x12; // SYN+ACK
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(100, 0);
    rec.writeUInt32LE(250000, 4);
    rec.writeUInt32LE(frame.length, 8);
    rec.writeUInt32LE(frame.length, 12);
    const [p] = parsePcap(Buffer.concat([header, rec, frame]));
    expect(p).toMatchObject({ src: '10.241.0.4', sport: 40001, dst: '10.240.0.4', dport: 32000, flags: 'S.', seq: 7, payloadLength: 0, time: 100.25 });
  });
  it('takes an empty file as no packets and refuses what is not a pcap', () => {
    expect(parsePcap(Buffer.alloc(0))).toEqual([]);
    expect(() => parsePcap(Buffer.from('0a0d0d0a000000000000000000000000000000000000000000', 'hex'))).toThrow(PcapError);
    expect(() => parsePcap(Buffer.alloc(10))).toThrow(/shorter/);
  });
});

describe('flow matching', () => {
  const { w, evidence } = fixture('nodeport', 'nodeport');
  it('finds each path its flow: the cross-node path the request web-2 answered', () => {
    const byPath = flowsOfPaths(w, evidence.flows);
    expect(byPath.map((x) => [x.path.name, x.flow?.answer?.pod])).toEqual([
      ['cross-node', 'web-2'],
      ['same-node', 'web-1'],
    ]);
    expect(trafficGroups(w)).toHaveLength(1);
  });
  it('relates packets to a flow on both sides of DNAT and SNAT, and no other', () => {
    const cross = flowsOfPaths(w, evidence.flows)[0]!.flow!;
    const vars = flowVariables(cross);
    expect(vars.pod).toBe('10.244.1.2:8443');
    expect(vars.snat).toMatch(/^10\.240\.0\.4:\d+$/);
    expect(evidence.packets['client:eth0']!.filter((p) => packetInFlow(p, cross)).length).toBeGreaterThan(3);
    expect(evidence.packets['web-2:eth0']!.filter((p) => packetInFlow(p, cross)).length).toBeGreaterThan(3);
    const other = evidence.flows.find((f) => f !== cross)!;
    expect(evidence.packets['web-2:eth0']!.filter((p) => packetInFlow(p, other))).toEqual([]);
  });
  it('resolves address patterns against a flow', () => {
    const vars = { client: '10.241.0.4:20001', snat: '10.240.0.4:5555' };
    expect(resolvePattern('$client', vars)).toEqual({ ip: '10.241.0.4', port: 20001 });
    expect(resolvePattern('$snat.ip:*', vars)).toEqual({ ip: '10.240.0.4' });
    expect(resolvePattern('10.240.0.4:*', vars)).toEqual({ ip: '10.240.0.4', port: undefined });
    expect(resolvePattern('$pod', vars)).toBeUndefined();
  });
  it('locates a flow in the conntrack table that holds its original tuple', () => {
    const flow: Flow = { ...evidence.flows[0]!, conntrack: undefined };
    locateFlow(flow, { node2: [], node1: evidence.conntrack.node1! });
    expect(flow.conntrack?.node).toBe('node1');
    const lost = { ...flow, conntrack: undefined, client: '10.241.0.4:1' };
    locateFlow(lost, evidence.conntrack);
    expect(lost.conntrack).toBeUndefined();
  });
  it('ties a path with `via` to the node that translated the flow (load balancer)', () => {
    const lb = fixture('loadbalancer', 'loadbalancer');
    const byPath = flowsOfPaths(lb.w, lb.evidence.flows);
    for (const { path, flow } of byPath) {
      expect(flow, path.name).toBeDefined();
      expect(flow!.conntrack?.node).toBe(path.via);
      expect(flowFitsPath({ ...flow!, conntrack: undefined }, path)).toBe(false);
    }
  });
});

describe('source ports', () => {
  it('hands out lab ports below the kernel ephemeral range, each once in a row', () => {
    const ports = Array.from({ length: 50 }, nextSourcePort);
    expect(new Set(ports).size).toBe(50);
    expect(ports.every(isLabSourcePort)).toBe(true);
    expect(LAB_SOURCE_PORTS.to).toBeLessThan(32768);
    expect(isLabSourcePort(40000)).toBe(false);
  });

  it('skips ports a socket of the sender holds (a TIME_WAIT from an earlier run) and records what it hands out', () => {
    const probe = nextSourcePort();
    const after = (n: number) => LAB_SOURCE_PORTS.from + ((probe + n - LAB_SOURCE_PORTS.from) % (LAB_SOURCE_PORTS.to - LAB_SOURCE_PORTS.from + 1));
    const inUse = new Set([after(1), after(2)]);
    const port = nextSourcePort(inUse);
    expect(port).toBe(after(3));
    expect(inUse.has(port)).toBe(true);
  });
});

describe('judges against saved runs', () => {
  it('judge a saved NodePort run as the live run did', () => {
    const { w, evidence, saved } = fixture('nodeport', 'nodeport');
    const paths = judgeWalkthrough(w, evidence);
    expect(statuses({ paths })).toEqual(statuses(saved));
    expect(paths.flatMap((p) => p.steps).every((s) => s.status === 'pass')).toBe(true);
  });
  it('judge the unready nodeport-local run: no answer, and the DROP rule counted', () => {
    const { w, evidence, saved } = fixture('unready', 'nodeport-local', { 'pods.web-2.ready': 'false', walkthrough: 'nodeport-local-unready.walkthrough.yaml' });
    const paths = judgeWalkthrough(w, evidence);
    expect(statuses({ paths })).toEqual(statuses(saved));
    const drop = paths.flatMap((p) => p.steps).find((s) => s.expected.includes('DROP'));
    expect(drop?.status).toBe('pass');
    expect(drop?.seen).toMatch(/counter \+\d+/);
  });
  it('judge a saved load-balancer run (four paths, two entry nodes)', () => {
    const { w, evidence, saved } = fixture('loadbalancer', 'loadbalancer');
    expect(statuses({ paths: judgeWalkthrough(w, evidence) })).toEqual(statuses(saved));
  });

  const { w, evidence } = fixture('nodeport', 'nodeport');
  const stepOf = (paths: ReturnType<typeof judgeWalkthrough>, path: string, title: RegExp) => paths.find((p) => p.name === path)!.steps.find((s) => title.test(s.title))!;

  it('fails the SNAT step when node1 eth0 saw no packet', () => {
    const e = copy(evidence);
    e.packets['node1:eth0'] = [];
    const s = stepOf(judgeWalkthrough(w, e), 'cross-node', /SNAT/);
    expect(s).toMatchObject({ status: 'fail', seen: 'no packet of this connection' });
  });
  it('fails the route step when the route leaves by another device', () => {
    const e = copy(evidence);
    e.routes.node1!['10.244.1.2'] = 'cbr0';
    expect(stepOf(judgeWalkthrough(w, e), 'cross-node', /routes/)).toMatchObject({ status: 'fail', seen: 'via cbr0' });
  });
  it('fails the DNAT-counter step when the counter did not move', () => {
    const e = copy(evidence);
    e.dnatAfter = e.dnatBefore;
    expect(stepOf(judgeWalkthrough(w, e), 'cross-node', /DNAT rule/)).toMatchObject({ status: 'fail', seen: expect.stringMatching(/^counter \+0/) });
  });
  it('fails the ClusterIP step when any packet carries it', () => {
    const e = copy(evidence);
    e.packets['node1:eth0'] = [{ ...e.packets['node1:eth0']![0]!, dst: '172.31.0.5' }];
    expect(stepOf(judgeWalkthrough(w, e), 'cross-node', /ClusterIP/).status).toBe('fail');
  });
  it('fails every flow step of a path whose pod never answered', () => {
    const e = copy(evidence);
    e.flows = e.flows.filter((f) => f.answer?.pod !== 'web-2');
    const cross = judgeWalkthrough(w, e).find((p) => p.name === 'cross-node')!;
    expect(cross.flow).toBeUndefined();
    const flowSteps = cross.steps.filter((s) => !/ClusterIP/.test(s.title));
    for (const s of flowSteps) {
      expect(s.status).toBe('fail');
      // What became of the requests, from what the traffic generator recorded.
      expect(s.seen).toMatch(/^none of \d+ requests took this path: \d+ answered \(web-1 \d+\)$/);
      // No internal placeholder ($client, $snat) or check kind name (dnatRule, answer) in the expected column.
      expect(s.expected, s.step).not.toMatch(/\$|^(dnatRule|answer|packet|conntrack|route)$/);
    }
    const expected = flowSteps.map((s) => s.expected).join('\n');
    expect(expected).toContain('10.241.0.4:* > 10.240.0.4:32000'); // the sender's address is known without a flow
    expect(expected).toContain('> the SNAT address');
  });
  it('says how many requests went unanswered, and how, when none took a path', () => {
    const e = copy(evidence);
    // Eight requests of the saved run's path (it sent two): six time out, two are refused.
    e.flows = Array.from({ length: 8 }, (_x, i) => e.flows[i % e.flows.length]!).map((f, i) => ({ index: i, group: f.group, from: f.from, client: f.client, target: f.target, error: i % 4 === 0 ? 'curl: (7) Failed to connect to 10.240.0.4 port 32000: Connection refused' : 'curl: (28) Connection timed out after 1001 milliseconds' }));
    const cross = judgeWalkthrough(w, e).find((p) => p.name === 'cross-node')!;
    const n = e.flows.length;
    const refused = e.flows.filter((_f, i) => i % 4 === 0).length;
    expect(cross.steps.find((s) => s.status === 'fail')!.seen).toBe(`0 of ${n} requests answered: ${n - refused} timed out, ${refused} connection refused`);
  });
  it("names where the kernel dropped the unanswered requests (the drop trace's reason), once per request and place", () => {
    const e = copy(evidence);
    e.flows = Array.from({ length: 3 }, (_x, i) => ({ index: i, group: evidence.flows[0]!.group, from: 'client', client: `10.241.0.4:${20000 + i}`, target: '10.240.0.4:32000', error: 'curl: (28) Connection timed out after 1001 milliseconds' }));
    const rp = { reason: 'IP_RPFILTER', meaning: 'the reverse-path filter refused its source', host: 'node1', netns: 'np-node1', device: 'eth0', location: 'ip_rcv_finish_core+0x260/0x470', count: 1 };
    // Two requests dropped there (the first twice: its SYN and a retransmission); the third only by an unrelated drop in its window, not named.
    const stray = { ...rp, reason: 'NOT_SPECIFIED', meaning: 'the kernel gave no reason', host: 'client' };
    e.drops = { '10.241.0.4:20000': [rp, { ...rp, count: 2 }], '10.241.0.4:20001': [rp], '10.241.0.4:20002': [stray] };
    const cross = judgeWalkthrough(w, e).find((p) => p.name === 'cross-node')!;
    expect(cross.steps.find((s) => s.status === 'fail')!.seen).toBe('0 of 3 requests answered: 3 timed out; the kernel dropped 2 at node1 eth0: IP_RPFILTER (the reverse-path filter refused its source)');
  });
  it('fails the conntrack step when the entry is on another node', () => {
    const e = copy(evidence);
    e.conntrack = { node2: e.conntrack.node1!, node1: [] };
    expect(stepOf(judgeWalkthrough(w, e), 'cross-node', /translated by node1/).status).toBe('fail');
  });
  it('every check kind has exactly one judge', () => {
    const kinds = [...Object.keys(groupJudges), ...Object.keys(flowJudges)].sort();
    expect(kinds).toEqual(['affinityExpired', 'answer', 'bgpSession', 'conntrack', 'dnatRule', 'encapsulated', 'frame', 'httpResponse', 'never', 'noAnswer', 'noPacket', 'packet', 'recent', 'route', 'rule', 'sameEndpoint', 'share', 'allVia', 'arp', 'gratuitousArp'].sort());
    expect(checkKind({ step: '1', title: 't', expect: { noAnswer: true } })).toBe('noAnswer');
  });
  it('judge recent lists (sessionAffinity) and shares', () => {
    const ctx = { at: 'node1', groupFlows: [], evidence: { ...copy(evidence), recent: { node1: [{ chain: 'KUBE-SEP-A', endpoint: '10.244.0.3:8443', sources: ['10.241.0.4'] }, { chain: 'KUBE-SEP-B', endpoint: '10.244.1.2:8443', sources: [] }] } } };
    const pat = (x: string) => resolvePattern(x, { client: '10.241.0.4:20000' });
    const flow = evidence.flows[0]!;
    expect(flowJudges.recent({ client: '$client', endpoint: '10.244.0.3:8443' }, { ...ctx, flow, pat }).ok).toBe(true);
    expect(flowJudges.recent({ client: '$client', endpoint: '10.244.1.2:8443' }, { ...ctx, flow, pat }).ok).toBe(false);
    const answered = (pod: string) => ({ ...flow, answer: { ...flow.answer!, pod } });
    const groupFlows = [answered('web-1'), answered('web-1'), answered('web-2')];
    expect(groupJudges.share({ min: 0.2, max: 0.8, endpoints: ['web-1', 'web-2'] }, { ...ctx, groupFlows }).ok).toBe(true);
    expect(groupJudges.share({ min: 0.4, max: 0.6, endpoints: ['web-1', 'web-2'] }, { ...ctx, groupFlows }).ok).toBe(false);
    expect(groupJudges.sameEndpoint(true, { ...ctx, groupFlows }).ok).toBe(false);
  });
});

describe('kernel readers (parsing only)', () => {
  const save = `*nat\n:KUBE-SEP-A - [0:0]\n[3:180] -A KUBE-SEP-A -p tcp -m comment --comment "default/web:https" -m tcp -j DNAT --to-destination 10.244.0.3:8443\n[2:120] -A KUBE-SEP-B -p tcp -j DNAT --to-destination 10.244.1.2:8443\nCOMMIT\n*filter\n[5:300] -A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "has no local endpoints" -j DROP\n[1:60] -A KUBE-EXTERNAL-SERVICES -p tcp -j DROP\nCOMMIT\n`;
  it('sums counters by table, chain and jump, and DNAT counters by endpoint', () => {
    const rules = parseSave(save).rules;
    expect(dnatCountersOf(rules)).toEqual({ '10.244.0.3:8443': 3, '10.244.1.2:8443': 2 });
    expect(countersByJump(rules)['filter KUBE-EXTERNAL-SERVICES DROP']).toEqual({ packets: 6, comment: 'has no local endpoints' });
  });
  it('parses conntrack -L', () => {
    const [e] = parseConntrack('tcp      6 119 TIME_WAIT src=10.241.0.4 dst=10.240.0.4 sport=41030 dport=32000 src=10.244.1.2 dst=10.240.0.4 sport=8443 dport=14124 [ASSURED] mark=0 use=1');
    expect(e).toMatchObject({ state: 'TIME_WAIT', original: { sport: 41030, dport: 32000 }, reply: { src: '10.244.1.2', dport: 14124 } });
  });
});

describe('report rendering', () => {
  const { w, evidence } = fixture('nodeport', 'nodeport');
  const result = summarise({ lab: 'nodeport' }, w, '/tmp/run', evidence, 123);
  it('counts steps and renders the table when there is room', () => {
    expect(result).toMatchObject({ passed: 21, failed: 0 });
    const text = renderReport(result);
    expect(text).toContain('path: cross-node');
    expect(text).toMatch(/step\s+what\s+at\s+expected\s+seen\s+result/);
    expect(text.split('\n').at(-1)).toBe(`verify nodeport: 21 passed, 0 failed, ${evidence.flows.length} requests, 123 ms`);
    expect(Math.max(...text.split('\n').map((l) => l.length))).toBeGreaterThan(150);
  });
  it('fits a narrow terminal in 100 columns: step, where, result, then the seen packet', () => {
    for (const columns of [80, 100, 120]) {
      const text = renderReport(result, { columns });
      const lines = text.split('\n').filter((l) => !l.startsWith('captures:'));
      expect(Math.max(...lines.map((l) => l.length)), `at ${columns} columns`).toBeLessThanOrEqual(Math.min(columns, NARROW_MAX));
      expect(text).not.toMatch(/step\s+what\s+at\s+expected/);
      expect(text).toMatch(/^ {2}pass {2}1\.1 {2}client:eth0 {2}The client connects/m);
      expect(text).toMatch(/^\s+seen 10\.241\.0\.4:\d+ > 10\.240\.0\.4:32000 \[S\]$/m);
    }
  });
  it('keeps the table with --wide, and shows what was expected of a failed step', () => {
    expect(renderReport(result, { columns: 80, wide: true })).toMatch(/step\s+what\s+at\s+expected/);
    const e = copy(evidence);
    e.routes.node1!['10.244.1.2'] = 'cbr0';
    const failed = renderReport(summarise({ lab: 'nodeport' }, w, '/tmp/run', e, 1), { columns: 80 });
    expect(failed).toMatch(/FAIL {2}1\.3 {2}node1/);
    expect(failed).toMatch(/expected route to 10\.244\.1\.2 leaves via eth0\n\s+seen via cbr0/);
  });
});

describe('report rendering on odd terminals', () => {
  const { w, evidence } = fixture('nodeport', 'nodeport');
  const result = summarise({ lab: 'nodeport' }, w, '/tmp/run', evidence, 1);
  it('takes a width of 0 as no width (the table), and never wraps below 40 columns', () => {
    expect(renderReport(result, { columns: 0 })).toBe(renderReport(result));
    const tiny = renderReport(result, { columns: 10 }).split('\n');
    expect(tiny[0]!.split(' ').length).toBeGreaterThan(3);
  });
});
