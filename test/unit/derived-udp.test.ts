import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parsePcap } from '../../lab/capture/pcap.js';
import type { ConntrackEntry } from '../../lab/kernel/conntrack.js';
import { planLab } from '../../lab/plan/plan.js';
import { loadTopology } from '../../lab/topology/load.js';
import { deriveWalkthrough } from '../../lab/verify/derive/index.js';
import { translatedWithKept, withKept } from '../../lab/verify/udp-conntrack.js';
import { podAnswerOf } from '../../lab/verify/udp-traffic.js';
import { loadWalkthrough, trafficSender, type WalkthroughPath } from '../../lab/verify/walkthrough.js';
import { answerQuery, encodeQuery, HOSTNAME_BIND } from '../../lab/workload/dns-message.js';
import { pcapOf } from './helpers.js';

const udpOnly = { 'services.web.ports.https.protocol': 'UDP' };
const answerOf = (p: WalkthroughPath) => p.steps.find((s) => s.expect?.answer)?.expect?.answer?.client;

describe('derived walkthroughs over UDP', () => {
  it('a world whose only Service port is UDP verifies (no more "nothing can be reached"): datagram steps, no TCP flags', () => {
    const { topology, path } = loadTopology('nodeport', udpOnly);
    const { walkthrough, skipped } = deriveWalkthrough(topology, path);
    expect(skipped.filter((s) => s.includes('UDP'))).toEqual([]);
    expect(walkthrough.paths.length).toBeGreaterThan(0);
    expect(walkthrough.paths.every((p) => p.traffic?.protocol === 'UDP')).toBe(true);
    const packets = walkthrough.paths.flatMap((p) => p.steps.flatMap((s) => (s.expect?.packet ? [s.expect.packet] : [])));
    expect(packets.length).toBeGreaterThan(0);
    expect(packets.some((p) => 'flags' in p)).toBe(false);
    expect(walkthrough.paths[0]!.steps[0]!.title).toContain('sends a datagram to');
    // The same translation and reversal as over TCP: the client's NodePort path to web-2 via node1 is masqueraded to node1's address.
    const cross = walkthrough.paths.find((p) => p.name === 'default/web:https nodePort from client to 10.240.0.4:32000 -> web-2')!;
    expect(answerOf(cross)).toBe('10.240.0.4:*');
    expect(cross.steps.at(-1)!.expect?.packet).toEqual({ src: '10.240.0.4:32000', dst: '$client' });
  });

  it('SCTP is still skipped, saying why', () => {
    const { topology, path } = loadTopology('nodeport', { 'services.web.ports.https.protocol': 'SCTP' });
    expect(() => deriveWalkthrough(topology, path)).toThrow(/SCTP: verify sends HTTP over TCP and datagrams over UDP/);
  });

  it("the cluster DNS's UDP port is tried through the kube-dns Service; its TCP port (DNS, not HTTP) is not", () => {
    const { topology, path } = loadTopology('clusterip');
    const { walkthrough, skipped } = deriveWalkthrough(topology, path);
    const dns = walkthrough.paths.filter((p) => p.name.startsWith('kube-system/kube-dns:dns '));
    expect(dns.length).toBe(topology.nodes.filter((n) => topology.pods.some((p) => p.node === n.name)).length);
    expect(dns.every((p) => p.endpoint === 'coredns' && p.traffic?.protocol === 'UDP' && p.traffic.to === '172.31.0.10:53')).toBe(true);
    expect(skipped.some((s) => s.startsWith('kube-system/kube-dns:dns-tcp: '))).toBe(true);
  });

  it('a derived UDP walkthrough loads as a walkthrough file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'derived-udp-'));
    try {
      const { topology, path } = loadTopology('nodeport', udpOnly);
      writeFileSync(join(dir, 'w.yaml'), stringify(deriveWalkthrough(topology, path).walkthrough, { aliasDuplicateObjects: false }));
      const loaded = loadWalkthrough({ ...topology, walkthrough: join(dir, 'w.yaml') }, path).walkthrough;
      expect(loaded.paths.some((p) => p.traffic?.from === 'node1' && p.traffic.protocol === 'UDP')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the HTTP pods behind a UDP port answer datagrams there too (udpPorts); the DNS pod serves UDP on its own', () => {
    const plan = planLab(loadTopology('nodeport', udpOnly).topology);
    expect(plan.workloads.map((w) => [w.pod, w.udpPorts])).toEqual([['web-1', [8443]], ['web-2', [8443]]]);
    const tcp = planLab(loadTopology('nodeport').topology);
    expect(tcp.workloads.every((w) => w.udpPorts === undefined)).toBe(true);
  });
});

describe('derived localhost NodePorts', () => {
  const localhostPaths = (overrides: Record<string, string>) => {
    const { topology, path } = loadTopology('nodeport', overrides);
    return deriveWalkthrough(topology, path).walkthrough.paths.filter((p) => p.name.includes(' localhost nodePort '));
  };

  it('iptables mode: from each node to 127.0.0.1:<nodePort>, DNATed and masqueraded (the bridge toward a local pod, eth0 toward another node)', () => {
    const paths = localhostPaths({});
    expect(paths.map((p) => p.name)).toEqual([
      'default/web:https localhost nodePort from node1 to 127.0.0.1:32000 -> web-1',
      'default/web:https localhost nodePort from node1 to 127.0.0.1:32000 -> web-2',
      'default/web:https localhost nodePort from node2 to 127.0.0.1:32000 -> web-1',
      'default/web:https localhost nodePort from node2 to 127.0.0.1:32000 -> web-2',
    ]);
    expect(paths.map(answerOf)).toEqual(['10.244.0.1:*', '10.240.0.4:*', '10.240.0.5:*', '10.244.1.1:*']);
    const first = paths[0]!;
    expect(first.traffic).toMatchObject({ from: 'node1', to: '127.0.0.1:32000' });
    expect(first.via).toBe('node1');
    expect(first.steps.find((s) => s.expect?.conntrack)?.expect?.conntrack).toEqual({ original: { src: '$client', dst: '127.0.0.1:32000' }, reply: { src: '10.244.0.3:8443', dst: '10.244.0.1:*' } });
    // Nothing carrying 127.0.0.1 leaves the node; the sender's own eth0 is not where it would be seen.
    expect(first.steps[0]!.expect).toEqual({ never: '127.0.0.1' });
    expect(first.steps.some((s) => s.at === 'node1:eth0')).toBe(false);
  });

  it('externalTrafficPolicy Local: a local source is short-circuited to every endpoint, and masqueraded', () => {
    const paths = localhostPaths({ 'services.web.externalTrafficPolicy': 'Local' });
    expect(paths.map((p) => p.endpoint)).toEqual(['web-1', 'web-2', 'web-1', 'web-2']);
    expect(paths.every((p) => answerOf(p) !== '$client')).toBe(true);
  });

  it('none in nftables mode, with --iptables-localhost-nodeports=false, or nodePortAddresses without 127.0.0.1 (said so)', () => {
    expect(localhostPaths({ 'kubeProxy.mode': 'nftables' })).toEqual([]);
    expect(localhostPaths({ 'kubeProxy.localhostNodePorts': 'false' })).toEqual([]);
    const { topology, path } = loadTopology('nodeport', { 'kubeProxy.nodePortAddresses': '[10.240.0.0/24]' });
    const d = deriveWalkthrough(topology, path);
    expect(d.walkthrough.paths.some((p) => p.name.includes('localhost'))).toBe(false);
    expect(d.skipped.filter((s) => s.includes('the localhost NodePort on')).length).toBe(2);
  });

  it('a node sends from 127.0.0.1 to a loopback target, from its address elsewhere', () => {
    const { topology } = loadTopology('nodeport');
    expect(trafficSender(topology, { from: 'node1', to: '127.0.0.1:32000' }).address).toBe('127.0.0.1');
    expect(trafficSender(topology, { from: 'node1', to: '10.240.0.5:32000' }).address).toBe('10.240.0.4');
    expect(trafficSender(topology, { from: 'client', to: '10.240.0.5:32000' }).address).toBe('10.241.0.4');
  });
});

describe("a UDP request's answer names the pod", () => {
  const identity = { pod: 'coredns', node: 'node2', podIP: '10.244.1.10', port: 53, client: '10.244.0.5:20000' };

  it("the DNS pod answers CH TXT hostname.bind with who it is; an IN question is answered as before", () => {
    const zone = { domain: 'cluster.local', records: {} };
    const response = answerQuery(encodeQuery(7, HOSTNAME_BIND, 'TXT', 'CH'), zone, JSON.stringify(identity))!;
    const decoded = dnsPacket.decode(response);
    expect(decoded.answers?.[0]).toMatchObject({ type: 'TXT', class: 'CH', name: HOSTNAME_BIND });
    expect(podAnswerOf(response)).toEqual(identity);
    // Without an identity (or in class IN) hostname.bind is no name of the zone: REFUSED, nothing about the pod.
    expect(podAnswerOf(answerQuery(encodeQuery(7, HOSTNAME_BIND, 'TXT', 'CH'), zone)!)).toBeUndefined();
    expect(podAnswerOf(answerQuery(encodeQuery(7, HOSTNAME_BIND, 'TXT'), zone, JSON.stringify(identity))!)).toBeUndefined();
  });

  it("an HTTP pod's datagram answer is its JSON; anything else is no answer", () => {
    expect(podAnswerOf(Buffer.from(`${JSON.stringify({ ...identity, pod: 'web-1' })}\n`))?.pod).toBe('web-1');
    expect(podAnswerOf(Buffer.from('{"not":"a pod"}'))).toBeUndefined();
    expect(podAnswerOf(Buffer.from('garbage'))).toBeUndefined();
  });
});

/** An Ethernet frame carrying an IPv4 UDP datagram. */
function udpFrame(src: number[], dst: number[], sport: number, dport: number, payload: Buffer): Buffer {
  const eth = Buffer.from('02000a0000010200 0a0000020800'.replace(/ /g, ''), 'hex');
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip[8] = 64;
  ip[9] = 17;
  Buffer.from(src).copy(ip, 12);
  Buffer.from(dst).copy(ip, 16);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(sport, 0);
  udp.writeUInt16BE(dport, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([eth, ip, udp, payload]);
}

describe('UDP in captures and conntrack', () => {
  it('the pcap reader reads a UDP datagram that is not VXLAN (flags empty, marked udp)', () => {
    const [p] = parsePcap(pcapOf([udpFrame([10, 241, 0, 4], [10, 240, 0, 4], 20000, 32000, Buffer.from('hello'))]));
    expect(p).toMatchObject({ src: '10.241.0.4', sport: 20000, dst: '10.240.0.4', dport: 32000, flags: '', udp: true, payloadLength: 5, payload: 'hello' });
  });

  const entry = (sport: number, pod: string): ConntrackEntry => ({
    protocol: 'udp',
    state: '',
    original: { src: '10.244.0.5', sport, dst: '10.96.0.10', dport: 53 },
    reply: { src: pod, sport: 53, dst: '10.244.0.5', dport: sport },
    text: '',
  });

  it('an exchange whose entry expired before the final read is put back from the one kept when it was found', () => {
    const final = { node1: [entry(20001, '10.244.1.10')], node2: [] };
    const merged = withKept(final, [{ node1: [entry(20000, '10.244.1.10')] }, { node1: [entry(20001, '10.244.1.10')] }]);
    expect(merged.node1!.map((e) => e.original.sport)).toEqual([20001, 20000]);
    expect(merged.node2).toEqual([]);
    const translated = translatedWithKept({ node1: { '10.244.1.10:53': ['udp 10.244.0.5:20001 > 10.96.0.10:53'] } }, [{ node1: [entry(20000, '10.244.1.10')] }]);
    expect(translated.node1!['10.244.1.10:53']!.sort()).toEqual(['udp 10.244.0.5:20000 > 10.96.0.10:53', 'udp 10.244.0.5:20001 > 10.96.0.10:53']);
  });
});
