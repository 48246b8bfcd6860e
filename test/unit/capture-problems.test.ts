import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { captureProblem, type ObservationPoint } from '../../lab/capture/tcpdump.js';
import { loadTopology } from '../../lab/topology/load.js';
import { loadEvidence, type Evidence } from '../../lab/verify/evidence.js';
import { judgeWalkthrough } from '../../lab/verify/judges.js';
import { loadWalkthrough } from '../../lab/verify/walkthrough.js';

/** Issue 16, item 9: a capture that died or lost packets is blamed by name, not the packet path. */
const point: ObservationPoint = { id: 'node1:eth0', host: 'node1', ns: 'nodeport-node1', ifname: 'eth0' };
const counts = (captured: number, received: number, dropped: number) =>
  `tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 512 bytes\n${captured} packets captured\n${received} packets received by filter\n${dropped} packets dropped by kernel\n`;

describe('captureProblem: what tcpdump said at exit', () => {
  it('is nothing when tcpdump wrote every packet the kernel handed it', () => {
    expect(captureProblem(point, counts(12, 12, 0))).toBeUndefined();
  });
  it('names the point and the packets the kernel dropped', () => {
    expect(captureProblem(point, counts(10, 12, 2))).toBe('tcpdump at node1:eth0 (namespace nodeport-node1): the kernel dropped 2 packets before tcpdump read them');
  });
  it('names the packets tcpdump never wrote (stopped with packets still in its buffer)', () => {
    expect(captureProblem(point, counts(11, 12, 0))).toBe('tcpdump at node1:eth0 (namespace nodeport-node1) wrote 11 of the 12 packets the kernel handed it');
  });
  it('names a tcpdump that ended before the traffic did, with its signal or exit code and its last words', () => {
    expect(captureProblem(point, 'tcpdump: listening on eth0\n', { code: null, signal: 'SIGKILL' })).toBe('tcpdump at node1:eth0 (namespace nodeport-node1) ended before the traffic did (killed by SIGKILL)');
    expect(captureProblem(point, 'tcpdump: listening on eth0\ntcpdump: pcap_loop: The interface disappeared\n', { code: 1, signal: null })).toBe(
      'tcpdump at node1:eth0 (namespace nodeport-node1) ended before the traffic did (exit code 1): tcpdump: pcap_loop: The interface disappeared',
    );
  });
});

describe('a step at a capture that went wrong blames the capture', () => {
  const { topology, path } = loadTopology('nodeport');
  const { walkthrough: w } = loadWalkthrough(topology, path);
  const saved = loadEvidence(join(import.meta.dirname, '..', 'fixtures', 'runs', 'nodeport'));
  const killed = 'tcpdump at node1:eth0 (namespace nodeport-node1) ended before the traffic did (killed by SIGKILL)';
  const withDeadCapture = (id: string): Evidence => {
    const e = structuredClone(saved);
    e.packets[id] = [];
    e.captureProblems = { [id]: killed.replace('node1:eth0', id) };
    e.capturesEnded = [id];
    return e;
  };
  const steps = (e: Evidence) => judgeWalkthrough(w, e).flatMap((p) => p.steps.map((s) => ({ path: p.name, ...s })));

  it('passes on the saved run as it is', () => {
    expect(steps(saved).filter((s) => s.status === 'fail')).toEqual([]);
  });

  it('a packet missing where tcpdump died says that tcpdump died, not "no packet of this connection"', () => {
    const failed = steps(withDeadCapture('node1:eth0')).filter((s) => s.status === 'fail');
    expect(failed.length).toBeGreaterThan(0);
    for (const s of failed.filter((x) => x.at === 'node1:eth0')) expect(s.seen).toMatch(/^capture failed: tcpdump at node1:eth0 \(namespace nodeport-node1\) ended before the traffic did \(killed by SIGKILL\)/);
    // The ClusterIP's absence from every capture proves nothing with one capture dead.
    expect(failed.find((s) => /never on the wire/.test(s.title))?.seen).toMatch(/^cannot tell: tcpdump at node1:eth0/);
  });

  it('an absence (noPacket) seen by a dead capture fails: it proves nothing', () => {
    const noPacket = steps(saved).find((s) => s.expected === 'no packet of this connection' && s.status === 'pass')!;
    const judged = steps(withDeadCapture(noPacket.at)).find((s) => s.path === noPacket.path && s.step === noPacket.step)!;
    expect(judged.status).toBe('fail');
    expect(judged.seen).toMatch(new RegExp(`^cannot tell: tcpdump at ${noPacket.at}`));
  });
});
