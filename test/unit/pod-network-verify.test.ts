import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describePacket, parsePcap } from '../../lab/capture/pcap.js';
import { graphDot, graphMermaid, topologyGraph } from '../../lab/picture/graph.js';
import { pathHops } from '../../lab/picture/hops.js';
import { topologySvg } from '../../lab/picture/svg.js';
import { withTunnelHops } from '../../lab/trace/tunnel.js';
import type { WalkHop } from '../../lab/trace/walk.js';
import { loadTopology } from '../../lab/topology/load.js';
import type { VerifyResult } from '../../lab/verify/engine.js';
import { loadEvidence, type Evidence } from '../../lab/verify/evidence.js';
import { judgeWalkthrough } from '../../lab/verify/judges.js';
import { inPodNetwork, loadWalkthrough, walkthroughSchema, type Walkthrough } from '../../lab/verify/walkthrough.js';
import { YamlFile } from '../../lab/util/yaml-file.js';
import { problemsOf } from './helpers.js';

/**
 * The pod network modes as verify sees them, without root: saved real runs of nodeport in vxlan
 * and host-gw mode (test/fixtures/runs/nodeport-<mode>) read and judged again, then changed so
 * that the mode's own checks must fail; the walkthrough read per mode; the pictures of a mode.
 */

const RUNS = join(import.meta.dirname, '..', 'fixtures', 'runs');

function fixture(mode: string): { w: Walkthrough; evidence: Evidence; saved: VerifyResult } {
  const { topology, path } = loadTopology('nodeport', { 'podNetwork.mode': mode });
  const { walkthrough: w } = loadWalkthrough(topology, path);
  const evidence = loadEvidence(join(RUNS, `nodeport-${mode}`));
  const saved = JSON.parse(readFileSync(join(RUNS, `nodeport-${mode}`, 'report.json'), 'utf8')) as VerifyResult;
  return { w, evidence, saved };
}
const stepsOf = (w: Walkthrough, e: Evidence) => judgeWalkthrough(w, e).flatMap((p) => p.steps);
const failedOf = (w: Walkthrough, e: Evidence) => stepsOf(w, e).filter((s) => s.status === 'fail').map((s) => s.title);

describe('pcap reader: VXLAN, frames and MSS', () => {
  const pkts = parsePcap(readFileSync(join(RUNS, 'nodeport-vxlan', 'node1-eth0.pcap')));

  it('decodes the VXLAN datagram node1 sends to node2 and the translated packet inside', () => {
    const wrapped = pkts.find((p) => p.vxlan && p.vxlan.inner.flags === 'S')!;
    expect(wrapped).toMatchObject({ src: '10.240.0.4', dst: '10.240.0.5', dport: 8472, vxlan: { vni: 1, inner: { src: '10.244.0.0', dst: '10.244.1.2', dport: 8443 } } });
    // Outer 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 around the inner IP packet.
    expect(wrapped.ipLength! - wrapped.vxlan!.inner.ipLength!).toBe(50);
    expect(wrapped.vxlan!.inner.srcMac).toBe('0e:fa:0a:f0:00:04');
    expect(wrapped.vxlan!.inner.dstMac).toBe('0e:fa:0a:f0:00:05');
    expect(describePacket(wrapped)).toMatch(/^UDP 10\.240\.0\.4:\d+ > 10\.240\.0\.5:8472 VXLAN vni 1 \(\d+ bytes\) carrying 10\.244\.0\.0:\d+ > 10\.244\.1\.2:8443 \[S\]$/);
  });

  it('reads the MSS a SYN-ACK advertises: 1410 behind a 1450 MTU, 1460 behind 1500', () => {
    const synAck = (run: string) => parsePcap(readFileSync(join(RUNS, run, 'web-2-eth0.pcap'))).find((p) => p.flags === 'S.');
    expect(synAck('nodeport-vxlan')?.mss).toBe(1410);
    expect(synAck('nodeport')?.mss).toBe(1460);
  });
});

describe('judging saved runs in each pod network mode', () => {
  for (const mode of ['vxlan', 'host-gw']) {
    it(`${mode}: judged as the live run judged it, every step passing`, () => {
      const { w, evidence, saved } = fixture(mode);
      const statuses = (paths: { steps: { step: string; status: string }[] }[]) => paths.map((p) => p.steps.map((s) => `${s.step} ${s.status}`));
      expect(statuses(judgeWalkthrough(w, evidence))).toEqual(statuses(saved.paths));
      expect(failedOf(w, evidence)).toEqual([]);
      expect(evidence.podNetwork).toBe(mode);
    });
  }

  it('vxlan: without the tunnel on the wire the encapsulation steps fail', () => {
    const { w, evidence } = fixture('vxlan');
    const unwrapped = { ...evidence, packets: Object.fromEntries(Object.entries(evidence.packets).map(([k, ps]) => [k, ps.map((p) => p.vxlan?.inner ?? p)])) };
    expect(failedOf(w, unwrapped)).toEqual([
      'node1 wraps the packet in VXLAN, UDP 10.240.0.4 -> 10.240.0.5:8472',
      "On the router's segment the packet exists only inside UDP between the nodes",
      'The request arrives at node2 inside UDP 10.240.0.4 -> 10.240.0.5:8472',
    ]);
  });

  it('vxlan: a same-node request leaking to node2 inside a VXLAN datagram fails the absence step', () => {
    const { w, evidence } = fixture('vxlan');
    const wrapped = evidence.packets['node1:eth0']!.find((p) => p.vxlan)!;
    const sameNode = evidence.packets['web-1:eth0']!.find((p) => p.flags === 'S')!;
    const leak = { ...wrapped, vxlan: { ...wrapped.vxlan!, inner: sameNode } };
    const e = { ...evidence, packets: { ...evidence.packets, 'node2:eth0': [...evidence.packets['node2:eth0']!, leak] } };
    expect(failedOf(w, evidence)).toEqual([]);
    expect(failedOf(w, e)).toEqual(['Nothing of this connection reaches node2']);
  });

  it('vxlan: a pod MSS of 1460 (no room for the header) fails the MTU step', () => {
    const { w, evidence } = fixture('vxlan');
    const e = { ...evidence, packets: { ...evidence.packets, 'web-2:eth0': evidence.packets['web-2:eth0']!.map((p) => (p.mss ? { ...p, mss: 1460 } : p)) } };
    const step = stepsOf(w, e).find((s) => s.title.startsWith('The largest packet between the pods'))!;
    expect(step).toMatchObject({ status: 'fail', expected: expect.stringMatching(/mss 1410$/), seen: expect.stringMatching(/mss 1460/) });
  });

  it('host-gw: a frame addressed to the router (as in routed mode) fails both frame steps', () => {
    const { w, evidence } = fixture('host-gw');
    // The router's MACs said to be node2's, and node2's to be the router's: every frame goes to the "router".
    const macs = { ...evidence.macs!, router: evidence.macs!.node2!, node2: evidence.macs!.router! };
    expect(failedOf(w, { ...evidence, macs })).toEqual(["node1 sends the packet straight to node2's MAC", "The router is handed no frame of it (it switches node1's frame to node2, routes nothing)"]);
  });

  it('routed: node1 hands the packet to the router, whose MAC the frame carries', () => {
    const { topology, path } = loadTopology('nodeport');
    const w = loadWalkthrough(topology, path).walkthrough;
    const step = stepsOf(w, loadEvidence(join(RUNS, 'nodeport'))).find((s) => s.title.startsWith('node1 hands the packet to the router'))!;
    expect(step).toMatchObject({ status: 'pass', seen: expect.stringMatching(/in a frame to 02:00:0a:f0:00:01 \(router\)$/) });
  });
});

describe('a walkthrough read in one pod network mode', () => {
  const { topology, path } = loadTopology('nodeport');
  const walkthroughFile = path.replace(/nodeport\.yaml$/, 'nodeport.walkthrough.yaml');
  // The file as written, before any mode is applied.
  const raw = YamlFile.read(walkthroughFile, 'nodeport.walkthrough.yaml').validate(walkthroughSchema);

  it('adds the mode observation points, leaves out other modes steps, and puts in the mode words and checks', () => {
    const routed = inPodNetwork(raw, 'routed');
    const vxlan = inPodNetwork(raw, 'vxlan');
    expect(routed.observe).not.toContain('node1:flannel.1');
    expect(vxlan.observe).toEqual(expect.arrayContaining(['node1:flannel.1', 'node2:flannel.1']));
    const titles = (w: Walkthrough) => w.paths[0]!.steps.map((s) => s.title);
    expect(titles(routed)).toContain('node1 hands the packet to the router (a frame to the router\'s MAC)');
    expect(titles(vxlan)).not.toContain('node1 hands the packet to the router (a frame to the router\'s MAC)');
    const route = vxlan.paths[0]!.steps.find((s) => s.expect?.route)!;
    expect(route.expect).toEqual({ route: { to: '10.244.1.2', dev: 'flannel.1' } });
  });

  it('a check of one mode that names a point only another mode watches is refused at that mode, with its line', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'pn-walk-'));
    const text = readFileSync(walkthroughFile, 'utf8').replace('        podNetwork:\n          host-gw:\n            title: node1 routes', '        podNetwork:\n          host-gw:\n            at: node1:flannel.1\n            expect: { packet: { src: a, dst: b } }\n            title: node1 routes');
    writeFileSync(join(dir, 'nodeport.walkthrough.yaml'), text);
    const line = text.slice(0, text.indexOf('          host-gw:\n            at: node1:flannel.1')).split('\n').length + 1;
    const problems = problemsOf(() => loadWalkthrough(topology, join(dir, 'nodeport.yaml')));
    expect(problems.map((p) => [p.field, p.line]), JSON.stringify(problems)).toEqual([[expect.stringMatching(/^paths\[0\]\.steps\[\d+\]\.podNetwork\.host-gw\.at$/), line]]);
    expect(problems[0]!.message).toMatch(/"node1:flannel\.1" is not one of the observation points/);
  });
});

describe('pictures of a pod network mode', () => {
  const t = loadTopology('nodeport', { 'podNetwork.mode': 'vxlan' }).topology;
  const g = topologyGraph(t);

  it('draw the VXLAN tunnel between the VTEPs, and the router without the routes the mode leaves out', () => {
    expect(g.overlays).toEqual([{ a: 'node1', b: 'node2', kind: 'tunnel', label: 'VXLAN VNI 1, UDP 8472' }]);
    expect(g.hosts.find((h) => h.name === 'router')!.interfaces).toEqual([]);
    expect(g.hosts.find((h) => h.name === 'node1')!.interfaces).toContain('flannel.1 10.244.0.0/32 VTEP 0e:fa:0a:f0:00:04');
    expect(topologySvg(g)).toMatch(/<g class="overlay tunnel" data-overlay="node1-node2"><path d="M [^"]+"><title>VXLAN VNI 1, UDP 8472: node1 ↔ node2<\/title><\/path><\/g>/);
    expect(topologySvg(g)).toContain('tunnel between every two nodes: VXLAN VNI 1, UDP 8472');
    expect(graphMermaid(g)).toContain('node1 -.-|"VXLAN VNI 1, UDP 8472"| node2');
    expect(graphDot(g)).toContain('"node1" -- "node2" [style=dashed, label="VXLAN VNI 1, UDP 8472"];');
    expect(topologyGraph(loadTopology('nodeport').topology).overlays).toEqual([]);
  });

  it('show the encapsulation as a hop: the inner packet, inside its outer header', () => {
    const evidence = loadEvidence(join(RUNS, 'nodeport-vxlan'));
    const flow = evidence.flows.find((f) => f.answer?.pod === 'web-2')!;
    const { request } = pathHops(flow, evidence.packets);
    const tunnelled = request.filter((h) => h.outer);
    expect(tunnelled.map((h) => h.point)).toEqual(['node1:eth0', 'router:br-nodes', 'node2:eth0']);
    expect(tunnelled[0]).toMatchObject({ src: expect.stringMatching(/^10\.244\.0\.0:/), dst: '10.244.1.2:8443', outer: expect.stringMatching(/^VXLAN vni 1, UDP 10\.240\.0\.4:\d+ > 10\.240\.0\.5:8472$/) });
    expect(request.map((h) => h.point)).toContain('node2:flannel.1');
  });
});

describe('lab trace in vxlan mode', () => {
  const hop = (host: string, direction: 'request' | 'reply', iif: string, oif: string): WalkHop => ({ host, direction, packet: 'p', iif, oif, hooks: [], notes: [], fate: 'ACCEPT', repeats: 0 });
  const walk = [hop('node1', 'request', 'eth0', 'flannel.1'), hop('node2', 'request', 'flannel.1', 'cbr0'), hop('node2', 'reply', 'cbr0', 'flannel.1'), hop('node1', 'reply', 'flannel.1', 'eth0')];

  it('puts the encapsulation between the node that wraps and the node that unwraps, each way', () => {
    const t = loadTopology('nodeport', { 'podNetwork.mode': 'vxlan' }).topology;
    const hops = withTunnelHops(walk, t);
    expect(hops.map((h) => h.host)).toEqual(['node1', 'flannel.1 node1 → node2', 'node2', 'node2', 'flannel.1 node2 → node1', 'node1']);
    expect(hops[1]!.packet).toBe('UDP 10.240.0.4 > 10.240.0.5:8472, VXLAN vni 1, inner Ethernet 0e:fa:0a:f0:00:04 > 0e:fa:0a:f0:00:05');
    expect(hops[4]!.direction).toBe('reply');
  });

  it('adds nothing in a mode without a tunnel', () => {
    expect(withTunnelHops(walk, loadTopology('nodeport', { 'podNetwork.mode': 'host-gw' }).topology)).toEqual(walk);
  });
});
