import { afterAll, describe, expect, it } from 'vitest';
import type { VerifyResult } from '../../lab/verify/result.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePcap } from '../../lab/capture/pcap.js';
import { lab, namespaces, requireRoot, startLab } from './helpers.js';
import { watch } from './tcpdump-watch.js';

const root = requireRoot();

describe.skipIf(!root).each(['iptables', 'nftables'])('dualstack lab (kube-proxy %s mode) against the real kernel', (mode) => {
  afterAll(async () => {
    await lab(['down', 'dualstack']);
    expect((await namespaces()).filter((n) => n.startsWith('dualstack-'))).toEqual([]);
  });

  it('comes up with an IPv6 address beside each IPv4 one', async () => {
    await lab(['down', 'dualstack']);
    const up = await lab(['up', 'dualstack', '--set', `kubeProxy.mode=${mode}`]);
    expect(up.exitCode, up.stderr).toBe(0);
    const addr = await lab(['exec', 'dualstack', 'node1', '--', 'ip', '-6', '-o', 'addr', 'show', 'scope', 'global']);
    expect(addr.stdout).toMatch(/eth0\s+inet6 fd00:10:240::4\/64 scope global nodad/);
    expect(addr.stdout).toMatch(/cbr0\s+inet6 fd00:10:244::1\/64 scope global nodad/);
  });

  it('kube-proxy programmed both families with the same chains', async () => {
    if (mode === 'iptables') {
      const v6 = await lab(['exec', 'dualstack', 'node1', '--', 'ip6tables-save', '-t', 'nat']);
      expect(v6.stdout).toContain('-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:https" -m tcp --dport 32000 -j KUBE-EXT-54WW65JLHZHRV7HC');
      expect(v6.stdout).toMatch(/-A KUBE-SERVICES -d fd00:172:31::5\/128 -p tcp .*--dport 443 -j KUBE-SVC-54WW65JLHZHRV7HC/);
      expect(v6.stdout).toContain('--to-destination [fd00:10:244:1::2]:8443');
      const v4 = await lab(['exec', 'dualstack', 'node1', '--', 'iptables-save', '-t', 'nat']);
      expect(v4.stdout).toContain('--to-destination 10.244.1.2:8443');
    } else {
      const v6 = await lab(['exec', 'dualstack', 'node1', '--', 'nft', 'list', 'table', 'ip6', 'kube-proxy']);
      expect(v6.exitCode, v6.stderr).toBe(0);
      expect(v6.stdout).toContain('dnat to [fd00:10:244:1::2]:8443');
      expect(v6.stdout).toContain('ip6 daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports');
      expect((await lab(['exec', 'dualstack', 'node1', '--', 'nft', 'list', 'table', 'ip', 'kube-proxy'])).stdout).toContain('dnat to 10.244.1.2:8443');
    }
  });

  it('lab verify dualstack passes: the seed over IPv4 and over IPv6 (NDP, one DNAT, masquerade, conntrack), each ClusterIP from a pod', async () => {
    const v = await lab(['verify', 'dualstack', '--json']);
    expect(v.exitCode, v.stdout.slice(-3000)).toBe(0);
    const r = JSON.parse(v.stdout) as VerifyResult;
    expect(r.paths.map((p) => p.name)).toEqual(['cross-node', 'same-node', 'cross-node over IPv6', 'same-node over IPv6', 'pod to ClusterIP', 'pod to ClusterIP over IPv6']);
    expect(r.failed).toBe(0);
    const step = (path: string, title: RegExp) => r.paths.find((p) => p.name === path)!.steps.find((s) => title.test(s.title))!;
    // What the wire showed, in the kernel's and tcpdump's own words.
    expect(step('cross-node over IPv6', /by NDP/).seen).toMatch(/^neighbor solicitation, who has fd00:10:240::4 \(from fe80::[0-9a-f:]+, [0-9a-f:]{17}\); advertised fd00:10:240::4 is-at [0-9a-f:]{17} \(node1\)/);
    expect(step('cross-node over IPv6', /translated by node1/).seen).toMatch(/^orig \[fd00:10:241::4\]:\d+ > \[fd00:10:240::4\]:32000, reply \[fd00:10:244:1::2\]:8443 > \[fd00:10:240::4\]:\d+$/);
    expect(step('cross-node over IPv6', /^The source is translated/).seen).toMatch(/^\[fd00:10:240::4\]:\d+ > \[fd00:10:244:1::2\]:8443 \[S\]$/);
    expect(step('cross-node over IPv6', /reverses/).seen).toMatch(/^\[fd00:10:240::4\]:32000 > \[fd00:10:241::4\]:\d+ \[S\.\]$/);
    expect(step('pod to ClusterIP over IPv6', /reply come from/).seen).toMatch(/^\[fd00:172:31::5\]:443 > \[fd00:10:244:1::2\]:\d+ \[S\.\]$/);
    expect(step('cross-node', /ARP/).seen).toMatch(/^who-has 10\.240\.0\.4 tell 10\.240\.0\.1/);
  });

  it('the derived walkthrough tries every way in over both families, and passes', async () => {
    const v = await lab(['verify', 'dualstack', '--walkthrough', 'derived', '--json']);
    expect(v.exitCode, v.stdout.slice(-3000)).toBe(0);
    const r = JSON.parse(v.stdout) as VerifyResult;
    const v6 = r.paths.filter((p) => p.name.includes('[fd00:'));
    // Every IPv4 way in has its IPv6 twin, but the localhost NodePort (iptables mode, 127.0.0.1 only: the IPv6 proxier writes none).
    const v4 = r.paths.filter((p) => !p.name.includes('[fd00:') && !p.name.includes('127.0.0.1'));
    expect(r.paths.some((p) => p.name.includes('127.0.0.1'))).toBe(mode === 'iptables');
    expect(v6.length).toBe(v4.length);
    // Each IPv6 path was judged on an IPv6 connection: the pod saw an IPv6 source.
    expect(v6.filter((p) => !p.flow?.answer?.client.startsWith('[fd00:')).map((p) => p.name)).toEqual([]);
  });

  it('carries a NodePort connection over IPv6 on the wire: NDP, one DNAT, masquerade to the node IPv6 address, conntrack reversing', async () => {
    // Forget node1's neighbours so the path must be resolved by NDP (where IPv4 uses ARP).
    await lab(['exec', 'dualstack', 'node1', '--', 'ip', '-6', 'neigh', 'flush', 'dev', 'eth0']);
    const eth0 = await watch('dualstack-node1', 'eth0', ['ip6']);
    const seen = new Set<string>();
    try {
      for (let i = 0; i < 60 && !seen.has('web-2'); i++) {
        const r = await lab(['exec', 'dualstack', 'client', '--', 'curl', '-s', '-m', '5', 'http://[fd00:10:240::4]:32000/']);
        expect(r.exitCode, r.stderr).toBe(0);
        const answer = JSON.parse(r.stdout) as { pod: string; client: string };
        seen.add(answer.pod);
        // The pod saw node1's IPv6 address (cross-node) or cbr0's (same node): masqueraded either way.
        expect(answer.client).toMatch(answer.pod === 'web-2' ? /^\[fd00:10:240::4\]:\d+$/ : /^\[fd00:10:244::1\]:\d+$/);
      }
      expect(seen.has('web-2')).toBe(true);
      const ct = await lab(['exec', 'dualstack', 'node1', '--', 'conntrack', '-L', '-f', 'ipv6', '-p', 'tcp', '--orig-dst', 'fd00:10:240::4', '--orig-port-dst', '32000']);
      expect(ct.stdout).toMatch(/src=fd00:10:241::4 dst=fd00:10:240::4 sport=\d+ dport=32000 src=fd00:10:244:1::2 dst=fd00:10:240::4 sport=8443/);
    } finally {
      await eth0.stop();
    }
    const text = eth0.lines.join('\n');
    expect(text).toMatch(/ICMP6, neighbor solicitation, who has fd00:10:240::(1|5)/);
    expect(text).toMatch(/ICMP6, neighbor advertisement, tgt is fd00:10:240::(1|5)/);
    // In from the client, to the NodePort; out toward the pod with node1's IPv6 address as source; the reply reversed.
    expect(text).toMatch(/fd00:10:241::4\.\d+ > fd00:10:240::4\.32000: Flags \[S\]/);
    expect(text).toMatch(/fd00:10:240::4\.\d+ > fd00:10:244:1::2\.8443: Flags \[S\]/);
    expect(text).toMatch(/fd00:10:244:1::2\.8443 > fd00:10:240::4\.\d+: Flags \[S\.\]/);
    expect(text).toMatch(/fd00:10:240::4\.32000 > fd00:10:241::4\.\d+: Flags \[S\.\]/);
    // The IPv6 ClusterIP never appears on the wire, as in IPv4.
    expect(text).not.toContain('fd00:172:31::5');
  });

  it('lab rules shows both families; lab conntrack shows the IPv6 connection beside IPv4 ones', async () => {
    const r = await lab(['rules', 'dualstack', 'node1']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(mode === 'nftables' ? '# IPv6 (nft list table ip6 kube-proxy)' : '# IPv6 (ip6tables-save -t nat)');
    expect(r.stdout).toContain(mode === 'nftables' ? 'dnat to [fd00:10:244:1::2]:8443' : '--to-destination [fd00:10:244:1::2]:8443');
    expect(r.stdout).toContain(mode === 'nftables' ? 'dnat to 10.244.1.2:8443' : '--to-destination 10.244.1.2:8443');
    const ct = await lab(['conntrack', 'dualstack', 'node1']);
    expect(ct.stdout).toMatch(/orig fd00:10:241::4:\d+ > fd00:10:240::4:32000 +reply fd00:10:244:1::2:8443 > fd00:10:240::4:\d+/);
  });

  it('lab probe takes an IPv6 destination (lab trace follows one too: trace-ipv6.test.ts)', async () => {
    const p = await lab(['probe', 'dualstack', '--to', '[fd00:10:240::4]:32000', '--requests', '6', '--json']);
    expect(p.exitCode, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout)).toMatchObject({ to: '[fd00:10:240::4]:32000', failed: 0 });
  });

  it('lab capture takes an IPv6 filter and streams the IPv6 connection at two points, the pcaps read back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dualstack-capture-'));
    try {
      const child = startLab(['capture', 'dualstack', 'client:eth0', 'node1:eth0', '--filter', 'ip6 and tcp port 32000', '--duration', '4', '--write', dir]);
      await new Promise<void>((resolve) => child.stderr!.on('data', (d: Buffer) => d.toString().includes('capturing on') && resolve()));
      expect((await lab(['exec', 'dualstack', 'client', '--', 'curl', '-s', '-m', '2', 'http://[fd00:10:240::4]:32000/'])).exitCode).toBe(0);
      const r = await child;
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const lines = String(r.stdout).split('\n').filter(Boolean);
      expect(lines.some((l) => /^\S+ client:eth0 +IP6 fd00:10:241::4\.\d+ > fd00:10:240::4\.32000: Flags \[S\]/.test(l)), lines.join('\n')).toBe(true);
      expect(lines.some((l) => /^\S+ node1:eth0 +IP6 fd00:10:240::4\.32000 > fd00:10:241::4\.\d+: Flags \[S\.\]/.test(l))).toBe(true);
      expect(lines.every((l) => / IP6 /.test(l))).toBe(true);
      // Every SYN the client's pcap holds (a retransmission may add one) is the IPv6 one to the NodePort.
      expect([...new Set(parsePcap(readFileSync(join(dir, 'client-eth0.pcap'))).filter((p) => p.flags === 'S').map((p) => `${p.src} > ${p.dst}:${p.dport}`))]).toEqual(['fd00:10:241::4 > fd00:10:240::4:32000']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the IPv6 ClusterIP answers from a pod', async () => {
    const r = await lab(['exec', 'dualstack', 'web-2', '--', 'curl', '-s', '-m', '5', 'http://[fd00:172:31::5]:443/']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ port: 8443 });
  });

  it('lab verify dualstack fails, naming the IPv6 steps, once node1 loses its IPv6 DNAT to web-2', async () => {
    // Remove the one rule by hand, inside node1's namespace: the IPv6 endpoint chain's DNAT to [fd00:10:244:1::2]:8443.
    if (mode === 'iptables') {
      const rules = (await lab(['exec', 'dualstack', 'node1', '--', 'ip6tables', '-t', 'nat', '-S'])).stdout.split('\n');
      const dnat = rules.find((l) => l.includes('--to-destination [fd00:10:244:1::2]:8443'));
      expect(dnat, rules.join('\n')).toBeDefined();
      const args = dnat!.replace(/^-A /, '-D ').match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"|"$/g, ''));
      const del = await lab(['exec', 'dualstack', 'node1', '--', 'ip6tables', '-t', 'nat', ...args]);
      expect(del.exitCode, del.stderr).toBe(0);
    } else {
      const text = (await lab(['exec', 'dualstack', 'node1', '--', 'nft', '-a', 'list', 'table', 'ip6', 'kube-proxy'])).stdout;
      const chain = /chain (endpoint-\S+__fd00\.10\.244\.1\.\.2\/8443) \{[^}]*?dnat to \[fd00:10:244:1::2\]:8443 # handle (\d+)/.exec(text);
      expect(chain, text).not.toBeNull();
      const del = await lab(['exec', 'dualstack', 'node1', '--', 'nft', 'delete', 'rule', 'ip6', 'kube-proxy', chain![1]!, 'handle', chain![2]!]);
      expect(del.exitCode, del.stderr).toBe(0);
    }
    const v = await lab(['verify', 'dualstack', '--json']);
    expect(v.exitCode, v.stdout.slice(-3000)).toBe(1);
    const r = JSON.parse(v.stdout) as VerifyResult;
    const failed = r.paths.flatMap((p) => p.steps.filter((s) => s.status === 'fail').map((s) => `${p.name}: ${s.step} ${s.title}`));
    // Only the IPv6 path through web-2 fails: no request reached web-2 over IPv6. iptables: web-2's KUBE-SEP chain
    // returns without a DNAT and KUBE-SVC's next rule sends the connection to web-1; nftables: the endpoint chain
    // ends without a verdict, the packet is delivered to node1's own port 32000, and nothing listens there.
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((f) => f.startsWith('cross-node over IPv6: ')), failed.join('\n')).toBe(true);
    expect(failed).toContain('cross-node over IPv6: 1.2.1 kube-proxy\'s IPv6 DNAT rule toward the pod counted the connection');
    const cross6 = r.paths.find((p) => p.name === 'cross-node over IPv6')!;
    expect(cross6.steps.find((s) => s.step === '1.2')!.seen).toMatch(/^none of \d+ requests took this path: \d+ answered \(web-1 \d+\)(, \d+ connection refused)?$/);
    for (const p of r.paths.filter((x) => x.name !== 'cross-node over IPv6')) expect(p.steps.every((s) => s.status !== 'fail'), p.name).toBe(true);
    // The human report names the failing IPv6 step too.
    const human = await lab(['verify', 'dualstack']);
    expect(human.exitCode).toBe(1);
    expect(human.stdout).toMatch(/path: cross-node over IPv6[\s\S]*FAIL\s+1\.2\.1(?: \[\d+\])?\s+node1\s+kube-proxy's IPv6 DNAT rule toward the pod/);
  });

  it('down removes every namespace', async () => {
    expect((await lab(['down', 'dualstack'])).exitCode).toBe(0);
    expect((await namespaces()).filter((n) => n.startsWith('dualstack-'))).toEqual([]);
  });
});
