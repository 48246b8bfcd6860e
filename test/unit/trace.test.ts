import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseNftMonitor, parseXtablesMonitor, type TracePass } from '../../lab/trace/events.js';
import { renderTrace } from '../../lab/trace/render.js';
import { iptablesTraceRuleCount, iptablesTraceRules, nftTraceTable, ownTable, readsWithNft, traceTag, type TraceSpec } from '../../lab/trace/rules.js';
import { buildWalk, rejectReply } from '../../lab/trace/walk.js';
import { ip6tablesRuleTexts, withIp6tablesText } from '../../lab/trace/ip6tables-text.js';
import type { Flow } from '../../lab/verify/flows.js';

/**
 * lab trace without root: monitor output saved from real traces (xtables-monitor --trace on
 * node1, node2 and the router of a NodePort lab; nft monitor on node1) parsed and walked.
 */

const DIR = join(import.meta.dirname, '..', 'fixtures', 'trace');

function saved(run: string): { flow: Flow; spec: TraceSpec; passes: Record<string, TracePass[]>; added: Record<string, number> } {
  const { flow, spec } = JSON.parse(readFileSync(join(DIR, run, 'flow.json'), 'utf8')) as { flow: Flow; spec: TraceSpec };
  const passes: Record<string, TracePass[]> = {};
  const added: Record<string, number> = {};
  for (const host of ['node1', 'node2', 'router']) {
    const text = readFileSync(join(DIR, run, `${host}.iptables.txt`), 'utf8');
    const lines = text.split('\n');
    // Arrival stamps as the lines came: their order.
    const parsed = parseXtablesMonitor(text, spec.tag, lines.map((_, i) => i));
    passes[host] = parsed.passes;
    added[host] = parsed.added;
    expect(parsed.deleted, host).toBe(parsed.added);
  }
  return { flow, spec, passes, added };
}

describe('trace rules', () => {
  const spec: TraceSpec = { tag: traceTag(20001), proto: 'tcp', clientIP: '10.241.0.4', clientPort: 20001, podCIDR: '10.244.0.0/16' };
  it('marks exactly this connection before NAT, and the pod range after it, in PREROUTING and OUTPUT', () => {
    const add = iptablesTraceRules(spec, '-A');
    expect(add.startsWith('*raw\n') && add.endsWith('COMMIT\n')).toBe(true);
    const rules = add.split('\n').filter((l) => l.startsWith('-A'));
    expect(rules).toHaveLength(iptablesTraceRuleCount(spec));
    expect(rules[0]).toBe('-A PREROUTING -p tcp -s 10.241.0.4 -m tcp --sport 20001 -m tcp --tcp-flags SYN SYN -m comment --comment lab-trace-20001 -j TRACE');
    expect(rules.every((r) => r.includes('--comment lab-trace-20001 -j TRACE'))).toBe(true);
    expect(iptablesTraceRules(spec, '-D').replaceAll('-D ', '-A ')).toBe(add);
  });
  it('writes an nft table of its own, hooked just before the raw priority', () => {
    const nft = nftTraceTable(spec);
    expect(nft).toContain('add table ip lab-trace-20001');
    expect(nft).toContain('type filter hook prerouting priority raw - 1; policy accept;');
    expect(nft).toContain('add rule ip lab-trace-20001 pre ip saddr 10.241.0.4 tcp sport 20001 tcp flags & syn == syn meta nftrace set 1');
    expect(nftTraceTable({ ...spec, proto: 'udp' })).not.toContain('flags');
  });
  it('gives two traces at once different tags (their source ports differ)', () => {
    expect(traceTag(20001)).not.toBe(traceTag(20002));
  });
});

describe('xtables-monitor output', () => {
  const { flow, spec, passes, added } = saved('cross-node');
  it('sees every trace rule arrive (the readiness signal) and reads packets and rules', () => {
    expect(Object.values(added)).toEqual([8, 8, 8]);
    const nat = passes.node1!.find((p) => p.steps.some((s) => s.table === 'nat' && s.chain === 'KUBE-NODEPORTS'))!;
    expect(nat.packet).toMatchObject({ iif: 'eth0', src: flow.client.split(':')[0], dst: '10.240.0.4', dport: 32000, flags: 'S' });
    const jump = nat.steps.find((s) => s.chain === 'KUBE-NODEPORTS')!;
    expect(jump).toMatchObject({ kind: 'rule', verdict: 'JUMP' });
    expect(jump.target).toMatch(/^KUBE-EXT-/);
    expect(jump.rule).toMatch(/^-p tcp -m comment --comment "default\/web:https" -m tcp --dport 32000 -j KUBE-EXT-/);
    expect(spec.tag).toBe(`lab-trace-${spec.clientPort}`);
  });
  it('walks the cross-node path hop by hop in wire order', () => {
    const hops = buildWalk(passes, flow, 'raw');
    expect(hops.map((h) => `${h.host} ${h.direction}`)).toEqual(['router request', 'node1 request', 'router request', 'node2 request', 'node2 reply', 'router reply', 'node1 reply', 'router reply']);
    const node1 = hops[1]!;
    const chains = node1.hooks.flatMap((h) => h.rules.map((r) => r.chain));
    const order = ['PREROUTING', 'KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-EXT', 'KUBE-MARK-MASQ', 'KUBE-SVC', 'KUBE-SEP', 'FORWARD', 'KUBE-FORWARD', 'POSTROUTING', 'KUBE-POSTROUTING'];
    const firstIndex = (prefix: string) => chains.findIndex((c) => c.startsWith(prefix));
    expect(order.map(firstIndex).every((i, k, all) => i >= 0 && (k === 0 || i >= all[k - 1]!))).toBe(true);
    const dnat = node1.hooks.flatMap((h) => h.rules).find((r) => r.rule.includes('DNAT'))!;
    expect(dnat.nat).toBe(`now ${flow.client} > 10.244.1.2:8443`);
    expect(node1.hooks.flatMap((h) => h.rules).some((r) => r.rule.includes('MASQUERADE --random-fully'))).toBe(true);
    const snat = flow.conntrack!.entry.reply;
    expect(node1.notes.join(' ')).toContain(`${snat.dst}:${snat.dport} > 10.244.1.2:8443`);
    expect(hops[3]!.packet).toBe(`${snat.dst}:${snat.dport} > 10.244.1.2:8443 [S]`);
    const back = hops[6]!;
    expect(back.hooks[0]!.note).toMatch(/^no rule: conntrack translated this reply/);
    expect(back.notes.join(' ')).toContain(`conntrack, not a rule`);
    expect(hops[7]!.packet).toBe(`10.240.0.4:32000 > ${flow.client} [S.]`);
  });
  it('keeps only this connection: another flow finds nothing in the same output', () => {
    const other: Flow = { ...flow, client: '10.241.0.4:1', conntrack: undefined, answer: undefined };
    expect(buildWalk(passes, other, 'raw')).toEqual([]);
  });
  it('shows the DROP that stops the packet on the unready node', () => {
    const u = saved('unready');
    const hops = buildWalk(u.passes, u.flow, 'raw');
    const node2 = hops.find((h) => h.host === 'node2')!;
    expect(node2.fate).toBe('DROP');
    const drop = node2.hooks.flatMap((h) => h.rules).find((r) => r.verdict === 'DROP')!;
    expect(drop).toMatchObject({ chain: 'KUBE-EXTERNAL-SERVICES', comment: 'default/web:https has no local endpoints' });
    expect(hops.some((h) => h.direction === 'reply')).toBe(false);
    const text = renderTrace({ lab: 'unready', mode: 'iptables', from: 'client', to: '10.240.0.5:32000', flow: u.flow, traced: ['node1', 'node2', 'router'], hops, ms: 1 });
    expect(text).toContain('DROP: the packet ends here');
  });

  it('names a REJECT as REJECT, with what it sends back, though the kernel reports it as DROP', () => {
    const u = saved('unready');
    // The same walk, with the rule a service without endpoints has (text as xtables-monitor printed it in a real run).
    const rejecting = structuredClone(u.passes);
    const step = rejecting.node2!.flatMap((p) => p.steps).find((s) => s.verdict === 'DROP')!;
    step.rule = '-p tcp -m comment --comment "default/web:https has no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 32000 -j REJECT --reject-with icmp-port-unreachable';
    const node2 = buildWalk(rejecting, u.flow, 'raw').find((h) => h.host === 'node2')!;
    expect(node2).toMatchObject({ fate: 'REJECT', rejectWith: 'ICMP port-unreachable' });
    expect(node2.hooks.flatMap((h) => h.rules).map((r) => r.verdict)).toContain('REJECT');
    const text = renderTrace({ lab: 'x', mode: 'iptables', from: 'client', to: '10.240.0.5:32000', flow: u.flow, traced: ['node2'], hops: [node2], ms: 1 });
    expect(text).toContain('REJECT: the packet ends here, and node2 sends ICMP port-unreachable back to 10.241.0.4');
    expect(text).not.toContain('DROP: the packet ends here');
  });

  it('reads what a reject rule sends back, in both backends', () => {
    expect(rejectReply('-j REJECT --reject-with icmp-port-unreachable')).toBe('ICMP port-unreachable');
    expect(rejectReply('-p tcp -j REJECT --reject-with tcp-reset')).toBe('a TCP reset');
    expect(rejectReply('-j REJECT')).toBe('ICMP port-unreachable');
    expect(rejectReply('reject')).toBe('ICMP port-unreachable');
    expect(rejectReply('meta l4proto tcp reject with tcp reset')).toBe('a TCP reset');
    expect(rejectReply('reject with icmp type host-unreachable')).toBe('ICMP host-unreachable');
    expect(rejectReply('-j DROP')).toBeUndefined();
    expect(rejectReply('ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports')).toBeUndefined();
  });
});

describe('nft monitor output', () => {
  const text = readFileSync(join(DIR, 'nft-node1.txt'), 'utf8');
  const parsed = parseNftMonitor(text, 'lab-trace-x');
  it('reads the table events and the trace of both directions', () => {
    expect(parsed).toMatchObject({ added: 1, deleted: 1 });
    const syn = parsed.passes.find((p) => p.packet.flags === 'S' && p.steps.some((s) => s.chain === 'KUBE-NODEPORTS'))!;
    expect(syn.packet).toMatchObject({ iif: 'eth0', src: '10.241.0.4', sport: 15001, dst: '10.240.0.4', dport: 32000, ttl: 63 });
    expect(syn.steps.find((s) => s.chain === 'KUBE-NODEPORTS')).toMatchObject({ verdict: 'JUMP', target: 'KUBE-EXT-54WW65JLHZHRV7HC', rule: 'meta l4proto tcp tcp dport 32000 jump KUBE-EXT-54WW65JLHZHRV7HC' });
    expect(parsed.passes.some((p) => p.packet.flags === 'S.')).toBe(true);
  });
  it("reads kube-proxy's own nftables mode: policy verdicts with the packet's mark after them", () => {
    const line = 'trace id 1a2b3c4d ip kube-proxy filter-forward policy accept meta mark 0x00004000';
    const pkt = 'trace id 1a2b3c4d ip kube-proxy filter-forward packet: iif "eth0" oif "cbr0" ip saddr 10.241.0.4 ip daddr 10.244.0.3 ip ttl 62 tcp sport 30816 tcp dport 8443 tcp flags == syn';
    const p = parseNftMonitor(`${pkt}\n${line}\n`, 'lab-trace-1');
    expect(p.passes[0]!.steps).toEqual([{ table: 'kube-proxy', chain: 'filter-forward', kind: 'policy', verdict: 'ACCEPT' }]);
    expect(p.passes[0]!.packet).toMatchObject({ iif: 'eth0', oif: 'cbr0', dport: 8443, flags: 'S', ttl: 62 });
  });
  it('walks node1 the same way as xtables-monitor does, NAT included', () => {
    const flow: Flow = {
      index: 0,
      group: 'trace',
      from: 'client',
      client: '10.241.0.4:15001',
      target: '10.240.0.4:32000',
      conntrack: { node: 'node1', entry: { protocol: 'tcp', state: 'TIME_WAIT', original: { src: '10.241.0.4', sport: 15001, dst: '10.240.0.4', dport: 32000 }, reply: { src: '10.244.1.2', sport: 8443, dst: '10.240.0.4', dport: 47880 }, text: '' } },
    };
    const hops = buildWalk({ node1: parsed.passes }, flow, 'lab-trace-x');
    expect(hops.map((h) => h.direction)).toEqual(['request', 'reply']);
    const dnat = hops[0]!.hooks.flatMap((h) => h.rules).find((r) => r.rule.includes('dnat to'))!;
    expect(dnat).toMatchObject({ chain: 'KUBE-SEP-H6OLLUBTYNZRC5BX', verdict: 'ACCEPT', nat: 'now 10.241.0.4:15001 > 10.244.1.2:8443' });
    expect(hops[1]!.hooks[0]!.note).toMatch(/conntrack translated this reply/);
  });
});

describe("kube-proxy's nftables mode (nft monitor, saved from a real cross-node trace)", () => {
  const { flow, spec } = JSON.parse(readFileSync(join(DIR, 'nft-cross-node', 'flow.json'), 'utf8')) as { flow: Flow; spec: TraceSpec };
  const passes: Record<string, TracePass[]> = {};
  for (const host of ['node1', 'node2', 'router']) {
    const text = readFileSync(join(DIR, 'nft-cross-node', `${host}.nftables.txt`), 'utf8');
    const parsed = parseNftMonitor(text, spec.tag, text.split('\n').map((_, i) => i));
    expect(parsed, host).toMatchObject({ added: 1, deleted: 1 });
    passes[host] = parsed.passes;
  }
  it('walks the same hops as in iptables mode, through table ip kube-proxy', () => {
    const hops = buildWalk(passes, flow, spec.tag);
    expect(hops.map((h) => `${h.host} ${h.direction}`)).toEqual(['router request', 'node1 request', 'router request', 'node2 request', 'node2 reply', 'router reply', 'node1 reply', 'router reply']);
    const rules = hops[1]!.hooks.flatMap((h) => h.rules);
    expect(rules.every((r) => r.table === 'kube-proxy')).toBe(true);
    const chains = rules.map((r) => r.chain);
    const at = (prefix: string) => chains.findIndex((c) => c.startsWith(prefix));
    expect(['services', 'external-', 'mark-for-masquerade', 'service-', 'endpoint-', 'masquerading'].map(at).every((i, k, all) => i >= 0 && (k === 0 || i > all[k - 1]!))).toBe(true);
    expect(rules.find((r) => r.chain.startsWith('service-'))!.rule).toMatch(/^numgen random mod 2 vmap/);
    expect(rules.find((r) => r.rule.includes('dnat to'))!.nat).toBe(`now ${flow.client} > 10.244.1.2:8443`);
    expect(hops[6]!.notes.join(' ')).toContain('conntrack, not a rule');
  });
});


/**
 * IPv6 (the dualstack scenario), saved from real traces through scripts/isolated.sh: a NodePort
 * connection to [fd00:10:240::4]:32000 from the client, answered by web-2 on node2.
 */
describe('IPv6 trace rules', () => {
  const spec: TraceSpec = { tag: traceTag(20001), proto: 'tcp', clientIP: 'fd00:10:241::4', clientPort: 20001, podCIDR: 'fd00:10:244::/56', ipv6: true };
  it("writes ip6tables' TRACE rules and an nft table ip6 of its own", () => {
    const rules = iptablesTraceRules(spec, '-A').split('\n').filter((l) => l.startsWith('-A'));
    expect(rules[0]).toBe('-A PREROUTING -p tcp -s fd00:10:241::4 -m tcp --sport 20001 -m tcp --tcp-flags SYN SYN -m comment --comment lab-trace-20001 -j TRACE');
    expect(rules).toContain('-A OUTPUT -p tcp -s fd00:10:244::/56 -m tcp --tcp-flags SYN SYN -m comment --comment lab-trace-20001 -j TRACE');
    const nft = nftTraceTable(spec);
    expect(nft).toContain('add table ip6 lab-trace-20001');
    expect(nft).toContain('add rule ip6 lab-trace-20001 pre ip6 saddr fd00:10:241::4 tcp sport 20001 tcp flags & syn == syn meta nftrace set 1');
    expect(nft).toContain('add rule ip6 lab-trace-20001 out meta l4proto tcp ip6 daddr fd00:10:244::/56 tcp flags & syn == syn meta nftrace set 1');
    expect(nft).not.toMatch(/ ip (saddr|daddr) |table ip /);
    // IPv4's are as before.
    expect(nftTraceTable({ ...spec, clientIP: '10.241.0.4', podCIDR: '10.244.0.0/16', ipv6: undefined })).toContain('add table ip lab-trace-20001');
  });
  it('is read with nft monitor in both modes (xtables-monitor quits on ip6tables rules here)', () => {
    expect(readsWithNft('iptables', spec)).toBe(true);
    expect(readsWithNft('iptables', { ipv6: undefined })).toBe(false);
    expect(readsWithNft('nftables', { ipv6: undefined })).toBe(true);
  });
});

describe('xtables-monitor IPv6 lines', () => {
  // What xtables-monitor v1.8.9 printed before it quit at KUBE-NODEPORTS' `-p tcp` rule.
  const text = readFileSync(join(DIR, 'xtables-ip6-node1.txt'), 'utf8');
  it('reads the IPv6 packet (HOPLIMIT for TTL, no PROTO= field) and the -6 rules', () => {
    const { passes } = parseXtablesMonitor(text, 'lab-trace-40123');
    expect(passes[0]!.packet).toEqual({ iif: 'eth0', oif: undefined, proto: 'tcp', src: 'fd00:10:241::4', dst: 'fd00:10:240::4', sport: 40124, dport: 32000, flags: 'S', ttl: 63 });
    const steps = passes[1]!.steps;
    expect(steps[0]).toEqual({ table: 'nat', chain: 'PREROUTING', kind: 'rule', verdict: 'JUMP', target: 'KUBE-SERVICES', rule: '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES' });
    expect(steps[1]!.rule).toMatch(/^! -d ::1\/128 /);
  });
});

function saved6(run: string, mode: 'iptables' | 'nftables') {
  const { flow, spec } = JSON.parse(readFileSync(join(DIR, run, 'flow.json'), 'utf8')) as { flow: Flow; spec: TraceSpec };
  const passes: Record<string, TracePass[]> = {};
  const counts: Record<string, [number, number]> = {};
  for (const host of ['node1', 'node2', 'router']) {
    const text = readFileSync(join(DIR, run, `${host}.${mode}.txt`), 'utf8');
    const parsed = parseNftMonitor(text, spec.tag, text.split('\n').map((_, i) => i));
    // iptables mode: each rule as ip6tables-save prints it, by nft's handle (saved listings of the same lab).
    const listing = (table: string) => ip6tablesRuleTexts(readFileSync(join(DIR, run, `${host}.nft-ip6-${table}.txt`), 'utf8'), readFileSync(join(DIR, run, `${host}.ip6tables-${table}.txt`), 'utf8'));
    passes[host] = mode === 'iptables' ? withIp6tablesText(parsed.passes, { nat: listing('nat'), filter: listing('filter') }) : parsed.passes;
    counts[host] = [parsed.added, parsed.deleted];
  }
  return { flow, spec, passes, counts, hops: buildWalk(passes, flow, ownTable(mode, spec)) };
}

const HOPS = ['router request', 'node1 request', 'router request', 'node2 request', 'node2 reply', 'router reply', 'node1 reply', 'router reply'];

describe('ip6tables rule text by nft handle', () => {
  const list = ['table ip6 nat { # handle 6', '\tchain KUBE-NODEPORTS { # handle 2', '\t\tmeta l4proto tcp  tcp dport 32000 counter packets 2 bytes 160 jump KUBE-EXT-X # handle 22', '\t}', '', '\tchain POSTROUTING { # handle 7', '\t\ttype nat hook postrouting priority srcnat; policy accept;', '\t\tcounter jump KUBE-POSTROUTING # handle 13', '\t\tcounter masquerade # handle 40', '\t}', '}'].join('\n');
  const save = ['*nat', ':POSTROUTING ACCEPT [0:0]', ':KUBE-NODEPORTS - [0:0]', '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING', '-A POSTROUTING -j MASQUERADE', '-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:https" -m tcp --dport 32000 -j KUBE-EXT-X', 'COMMIT'].join('\n');
  it("pairs each chain's k-th rule in nft -a list with its k-th -A line in ip6tables-save", () => {
    expect([...ip6tablesRuleTexts(list, save)]).toEqual([
      ['KUBE-NODEPORTS 22', '-p tcp -m comment --comment "default/web:https" -m tcp --dport 32000 -j KUBE-EXT-X'],
      ['POSTROUTING 13', '-m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING'],
      ['POSTROUTING 40', '-j MASQUERADE'],
    ]);
  });
  it("keeps nft's text for a chain whose rules changed between the two reads", () => {
    expect(ip6tablesRuleTexts(list, save.replace('-A POSTROUTING -j MASQUERADE\n', '')).has('POSTROUTING 13')).toBe(false);
  });
  it('reads the handle from `nft -a monitor` trace lines and leaves it out of the rule', () => {
    const line = 'trace id fec62e2e ip6 nat KUBE-NODEPORTS rule meta l4proto tcp  tcp dport 32000 counter packets 0 bytes 0 jump KUBE-EXT-X # handle 22 (verdict jump KUBE-EXT-X)';
    const packet = 'trace id fec62e2e ip6 nat PREROUTING packet: iif "eth0" ip6 saddr fd00:10:241::4 ip6 daddr fd00:10:240::4 ip6 hoplimit 63 tcp sport 40000 tcp dport 32000 tcp flags == syn';
    const [pass] = parseNftMonitor(`${packet}\n${line}\n`, 'lab-trace-40000').passes;
    expect(pass!.steps[0]).toEqual({ table: 'nat', chain: 'KUBE-NODEPORTS', kind: 'rule', verdict: 'JUMP', target: 'KUBE-EXT-X', rule: 'meta l4proto tcp tcp dport 32000 jump KUBE-EXT-X', handle: 22 });
    expect(withIp6tablesText([pass!], { nat: ip6tablesRuleTexts(list, save) })[0]!.steps[0]!.rule).toBe('-p tcp -m comment --comment "default/web:https" -m tcp --dport 32000 -j KUBE-EXT-X');
  });
});

describe('IPv6 in iptables mode (ip6tables TRACE rules, nft -a monitor, the rules as ip6tables-save prints them)', () => {
  const { flow, spec, counts, hops } = saved6('ip6-cross-node', 'iptables');
  it("sees ip6tables' eight TRACE rules arrive and go (nft prints no comment: counted by table and action)", () => {
    for (const host of Object.keys(counts)) expect(counts[host], host).toEqual([iptablesTraceRuleCount(spec), iptablesTraceRuleCount(spec)]);
  });
  it("walks kube-proxy's ip6 chains in order on node1, the DNAT to web-2's IPv6 address, the MASQUERADE to node1's", () => {
    expect(hops.map((h) => `${h.host} ${h.direction}`)).toEqual(HOPS);
    const node1 = hops[1]!;
    expect(node1.packet).toBe(`${flow.client} > [fd00:10:240::4]:32000 [S]`);
    const rules = node1.hooks.flatMap((h) => h.rules);
    const chains = rules.map((r) => r.chain);
    const at = (prefix: string) => chains.findIndex((c) => c.startsWith(prefix));
    expect(['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-EXT-', 'KUBE-MARK-MASQ', 'KUBE-SVC-', 'KUBE-SEP-', 'KUBE-POSTROUTING'].map(at).every((i, k, all) => i >= 0 && (k === 0 || i > all[k - 1]!))).toBe(true);
    expect(rules.find((r) => r.chain === 'KUBE-NODEPORTS')).toMatchObject({ rule: '-p tcp --dport 32000 -j KUBE-EXT-54WW65JLHZHRV7HC', comment: 'default/web:https' });
    expect(rules.find((r) => r.chain.startsWith('KUBE-SVC-'))!.rule).toMatch(/^-m statistic --mode random --probability 0\.5/);
    const dnat = rules.find((r) => r.rule.includes('DNAT'))!;
    expect(dnat).toMatchObject({ table: 'nat', rule: '-p tcp -j DNAT --to-destination [fd00:10:244:1::2]:8443', comment: 'default/web:https', nat: `now ${flow.client} > [fd00:10:244:1::2]:8443` });
    expect(rules.some((r) => r.chain === 'KUBE-POSTROUTING' && r.rule === '-j MASQUERADE --random-fully')).toBe(true);
    expect(node1.notes.join(' ')).toMatch(/^the source is rewritten as it leaves .*: \[fd00:10:240::4\]:\d+ > \[fd00:10:244:1::2\]:8443, as conntrack recorded$/);
    expect(hops[3]!.packet).toMatch(/^\[fd00:10:240::4\]:\d+ > \[fd00:10:244:1::2\]:8443 \[S\]$/);
  });
  it('says conntrack, not a rule, translated the reply on node1', () => {
    const back = hops[6]!;
    expect(back.hooks[0]!.note).toBe(`no rule: conntrack translated this reply, now [fd00:10:244:1::2]:8443 > ${flow.client}`);
    expect(back.notes).toEqual([`conntrack, not a rule, translates the reply back: it leaves as [fd00:10:240::4]:32000 > ${flow.client}`]);
  });
  it('renders it naming nft monitor as the reader', () => {
    const text = renderTrace({ lab: 'dualstack', mode: 'iptables', from: 'client', to: flow.target, flow, traced: ['node1', 'node2', 'router'], hops, ms: 1 }).replace(/\x1b\[[0-9;]*m/g, '');
    expect(text).toContain("kube-proxy mode iptables; the kernel's own trace (nft monitor trace)");
    expect(text).toContain('→ now [fd00:10:241::4]:');
  });
});

describe('IPv6 in nftables mode (table ip6 of its own, table ip6 kube-proxy)', () => {
  const { flow, counts, hops } = saved6('nft6-cross-node', 'nftables');
  it('walks services, service-, endpoint-, the dnat to web-2 and the masquerade', () => {
    for (const host of Object.keys(counts)) expect(counts[host], host).toEqual([1, 1]);
    expect(hops.map((h) => `${h.host} ${h.direction}`)).toEqual(HOPS);
    const rules = hops[1]!.hooks.flatMap((h) => h.rules);
    expect(rules.every((r) => r.table === 'kube-proxy')).toBe(true);
    const chains = rules.map((r) => r.chain);
    const at = (prefix: string) => chains.findIndex((c) => c.startsWith(prefix));
    expect(['services', 'external-', 'mark-for-masquerade', 'service-', 'endpoint-', 'masquerading'].map(at).every((i, k, all) => i >= 0 && (k === 0 || i > all[k - 1]!))).toBe(true);
    expect(rules.find((r) => r.chain === 'services')!.rule).toBe('ip6 daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports');
    expect(rules.find((r) => r.rule.includes('dnat to'))!.nat).toBe(`now ${flow.client} > [fd00:10:244:1::2]:8443`);
    expect(hops[1]!.notes.join(' ')).toMatch(/: \[fd00:10:240::4\]:\d+ > \[fd00:10:244:1::2\]:8443, as conntrack recorded$/);
    expect(hops[6]!.notes.join(' ')).toContain('conntrack, not a rule');
  });
});
