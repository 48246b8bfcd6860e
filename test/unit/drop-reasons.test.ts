import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planNetwork } from '../../lab/plan/network.js';
import { loadTopology } from '../../lab/topology/load.js';
import { connectionDrops, deviceNames, hostOfChain, kernelDrops, labDevicesOf, parseKernelEvents, type KernelEvent } from '../../lab/trace/drops.js';
import { parseXtablesMonitor } from '../../lab/trace/events.js';
import { dropLines } from '../../lab/trace/render.js';
import type { TraceSpec } from '../../lab/trace/rules.js';
import { buildWalk } from '../../lab/trace/walk.js';
import type { Flow } from '../../lab/verify/flows.js';

/**
 * Drop reasons without root: a real trace of nodeport-local with web-2 unready (tracefs
 * instance text and xtables-monitor output saved by LAB_TRACE_DUMP), parsed and correlated.
 */

const DIR = join(import.meta.dirname, '..', 'fixtures', 'drops', 'nodeport-local-unready');
const devices = labDevicesOf(planNetwork(loadTopology('nodeport-local').topology));
const kernelText = readFileSync(join(DIR, 'kernel-drops.txt'), 'utf8');
const { flow, spec } = JSON.parse(readFileSync(join(DIR, 'flow.json'), 'utf8')) as { flow: Flow; spec: TraceSpec };
const passes = Object.fromEntries(['node1', 'node2', 'router'].map((h) => [h, parseXtablesMonitor(readFileSync(join(DIR, `${h}.iptables.txt`), 'utf8'), spec.tag).passes]));
const hops = buildWalk(passes, flow, 'raw');
const window = [`send ${spec.tag}`, `sent ${spec.tag}`] as const;

describe('drop reasons: parsing tracefs lines', () => {
  it('reads kfree_skb, net_dev_queue, netif_receive_skb and marker lines, and skips the header', () => {
    const events = parseKernelEvents(
      [
        '#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION',
        '          <idle>-0       [000] ..s1. 45240.468218: kfree_skb: skbaddr=000000002cec6d22 rx_sk=0000000000000000 protocol=2048 location=ip_rcv_finish_core+0x260/0x470 reason: NOT_SPECIFIED',
        '     kworker/u8:0-3007    [000] b.... 45240.500219: net_dev_queue: dev=br-nodes skbaddr=0000000059fa5131 len=86',
        '     ksoftirqd/0-14      [000] ..s.. 45240.500190: netif_receive_skb: dev=eth0 skbaddr=0000000059fa5131 len=40',
        '            node-6921    [001] ...1. 48293.842556: tracing_mark_write: send lab-trace-13863',
      ].join('\n'),
    );
    expect(events).toEqual([
      { kind: 'free', at: 45240.468218, skb: '000000002cec6d22', reason: 'NOT_SPECIFIED', location: 'ip_rcv_finish_core+0x260/0x470' },
      { kind: 'queue', at: 45240.500219, skb: '0000000059fa5131', dev: 'br-nodes' },
      { kind: 'receive', at: 45240.50019, skb: '0000000059fa5131', dev: 'eth0' },
      { kind: 'marker', at: 48293.842556, text: 'send lab-trace-13863' },
    ]);
  });

  it("knows the lab's devices and veth pairs from the network plan", () => {
    expect(devices.byHost.router).toEqual(expect.arrayContaining(['p-node1', 'p-node2', 'p-client', 'br-nodes', 'br-clients']));
    expect(devices.veths).toContainEqual({ a: { host: 'node2', dev: 'eth0' }, b: { host: 'router', dev: 'p-node2' } });
    expect(deviceNames(devices)).toContain('veth-web-2');
  });
});

describe('drop reasons: tying a dropped skb to a host', () => {
  const ev = (kind: 'queue' | 'receive', dev: string) => ({ kind, dev, skb: 'x', at: 0 }) as Extract<KernelEvent, { kind: 'queue' }>;
  it('follows the skb across veth pairs: eth0 after p-node2 is node2, after p-node1 node1', () => {
    const path = [ev('queue', 'eth0'), ev('receive', 'p-client'), ev('receive', 'br-clients'), ev('queue', 'br-nodes')];
    expect(hostOfChain([...path, ev('queue', 'p-node2'), ev('receive', 'eth0')], devices)).toBe('node2');
    expect(hostOfChain([...path, ev('queue', 'p-node1'), ev('receive', 'eth0')], devices)).toBe('node1');
    expect(hostOfChain(path, devices)).toBe('router');
  });
  it('leaves a host open when the names do not decide it (eth0 alone is in every node and client)', () => {
    expect(hostOfChain([ev('receive', 'eth0')], devices)).toBeUndefined();
    expect(hostOfChain([], devices)).toBeUndefined();
  });
});

describe('drop reasons: the real trace', () => {
  it('finds the one drop between the markers: NETFILTER_DROP in node2 on eth0', () => {
    const all = kernelDrops(parseKernelEvents(kernelText), devices, ...window);
    expect(all).toEqual([expect.objectContaining({ reason: 'NETFILTER_DROP', host: 'node2', device: 'eth0', location: expect.stringMatching(/^nft_do_chain\+/) })]);
  });

  it("gives the connection's drop its rule: KUBE-EXTERNAL-SERVICES, no local endpoints", () => {
    const drops = connectionDrops(kernelDrops(parseKernelEvents(kernelText), devices, ...window), hops, (h) => `xd-${h}`);
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatchObject({ reason: 'NETFILTER_DROP', host: 'node2', netns: 'xd-node2', device: 'eth0', direction: 'request', count: 1 });
    expect(drops[0]!.rule).toMatchObject({ table: 'filter', chain: 'KUBE-EXTERNAL-SERVICES', comment: 'default/web:https has no local endpoints' });
    expect(dropLines({ drops }).join('\n')).toContain('NETFILTER_DROP');
  });

  it("keeps out drops that are not the connection's: outside the markers, or where its walk did not end", () => {
    const events = parseKernelEvents(kernelText);
    const drop = events.find((e) => e.kind === 'free')!;
    // The same drop, but after the window closed.
    const late = events.map((e) => (e === drop ? { ...e, at: 1e9 } : e));
    expect(kernelDrops(late, devices, ...window)).toEqual([]);
    // A drop on node1's eth0: the walk went through node2, not node1.
    const elsewhere = [{ reason: 'NETFILTER_DROP', location: 'nft_do_chain+0x1', at: 0, host: 'node1', device: 'eth0' }];
    expect(connectionDrops(elsewhere, hops, (h) => h)).toEqual([]);
    // The router forwarded it (it left by an interface): a drop there is another packet's.
    expect(connectionDrops([{ reason: 'IP_INNOROUTES', location: 'ip_error', at: 0, host: 'router', device: 'br-clients' }], hops, (h) => h)).toEqual([]);
  });

  it("a socket's queue purged as it closes (QUEUE_PURGE) is not the connection's drop, even where its walk ended", () => {
    const k = { reason: 'NETFILTER_DROP', location: 'nft_do_chain+0x46f/0x690', at: 0, host: 'node2', device: 'eth0' };
    const purge = { ...k, reason: 'QUEUE_PURGE', location: 'sk_stream_kill_queues+0x57/0xf0' };
    expect(connectionDrops([purge], hops, (h) => h)).toEqual([]);
    expect(connectionDrops([purge, k], hops, (h) => h).map((d) => d.reason)).toEqual(['NETFILTER_DROP']);
  });

  it("an NDP or MLD packet freed by IPv6's multicast input is not the connection's drop (IPv6 traces)", () => {
    const k = { reason: 'NETFILTER_DROP', location: 'nft_do_chain+0x46f/0x690', at: 0, host: 'node2', device: 'eth0' };
    const ndp = { ...k, reason: 'NOT_SPECIFIED', location: 'ip6_mc_input+0xd4/0x130' };
    expect(connectionDrops([ndp], hops, (h) => h)).toEqual([]);
    expect(connectionDrops([{ ...ndp, location: 'ip6_rcv_finish_core+0x1/0x2' }], hops, (h) => h).map((d) => d.reason)).toEqual(['NOT_SPECIFIED']);
  });

  it('lists a reason the kernel named before one freed without a reason at the same hop', () => {
    const k = { reason: 'NETFILTER_DROP', location: 'nft_do_chain+0x46f/0x690', at: 1, host: 'node2', device: 'eth0' };
    const unnamed = { ...k, reason: 'NOT_SPECIFIED', location: 'ip_rcv_finish_core+0x260/0x470', at: 0 };
    expect(connectionDrops([unnamed, k], hops, (h) => h).map((d) => d.reason)).toEqual(['NETFILTER_DROP', 'NOT_SPECIFIED']);
  });

  it('counts a retransmission dying the same way once, with its count', () => {
    const k = { reason: 'NETFILTER_DROP', location: 'nft_do_chain+0x46f/0x690', at: 0, host: 'node2', device: 'eth0' };
    expect(connectionDrops([k, { ...k, at: 1 }], hops, (h) => h)[0]!.count).toBe(2);
  });
});
