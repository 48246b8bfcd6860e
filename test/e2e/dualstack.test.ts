import { afterAll, describe, expect, it } from 'vitest';
import { lab, namespaces, requireRoot } from './helpers.js';
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

  it('lab verify dualstack passes (the NodePort walkthrough, IPv4 beside the IPv6)', async () => {
    const v = await lab(['verify', 'dualstack']);
    expect(v.exitCode, v.stdout.slice(-2000)).toBe(0);
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

  it('the IPv6 ClusterIP answers from a pod', async () => {
    const r = await lab(['exec', 'dualstack', 'web-2', '--', 'curl', '-s', '-m', '5', 'http://[fd00:172:31::5]:443/']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ port: 8443 });
  });

  it('down removes every namespace', async () => {
    expect((await lab(['down', 'dualstack'])).exitCode).toBe(0);
    expect((await namespaces()).filter((n) => n.startsWith('dualstack-'))).toEqual([]);
  });
});
