import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lab, namespaces, requireRoot, ROOT } from './helpers.js';

const root = requireRoot();
const FILE = join(ROOT, 'test', 'fixtures', 'worlds', 'dualstack-loadbalancer.yaml');

/** curl from a host of the lab: the answering pod, or undefined when no answer came (dropped). */
async function answer(from: string, url: string): Promise<string | undefined> {
  const r = await lab(['exec', 'dslb', from, '--', 'curl', '-s', '-m', '2', url]);
  if (r.exitCode !== 0) return undefined;
  return (JSON.parse(r.stdout) as { pod: string }).pod;
}

/**
 * IPv6 load balancer IPs, external IPs and source ranges of a dual-stack Service, against the real
 * kernel in both proxy modes (test/fixtures/worlds/dualstack-loadbalancer.yaml): the router routes
 * the IPv6 LB IP over both nodes and the IPv6 external IP to node1, kube-proxy's IPv6 proxier
 * DNATs both; loadBalancerSourceRanges6 lets client in and drops client2 over IPv6, while over IPv4
 * (no IPv4 ranges) client2 gets in: each family's ranges are its own, as kube-proxy splits them.
 */
describe.skipIf(!root).each(['iptables', 'nftables'] as const)('dual-stack LoadBalancer in IPv6 (kube-proxy %s mode)', (mode) => {
  afterAll(async () => {
    await lab(['down', 'dslb']);
    expect((await namespaces()).filter((n) => n.startsWith('dslb-'))).toEqual([]);
  });

  it('comes up with the IPv6 LB IP routed over both nodes and its rules in the ip6 tables', async () => {
    await lab(['down', 'dslb']);
    const up = await lab(['up', FILE, '--set', `kubeProxy.mode=${mode}`], { timeout: 180_000 });
    expect(up.exitCode, up.stderr.slice(-1500)).toBe(0);
    const route = await lab(['exec', 'dslb', 'router', '--', 'ip', '-6', 'route', 'show', 'fd00:10:240::100']);
    expect(route.stdout).toMatch(/nexthop via fd00:10:240::4/);
    expect(route.stdout).toMatch(/nexthop via fd00:10:240::5/);
    if (mode === 'iptables') {
      const v6 = (await lab(['exec', 'dslb', 'node1', '--', 'ip6tables-save', '-t', 'nat'])).stdout;
      expect(v6).toMatch(/-A KUBE-SERVICES -d fd00:10:240::100\/128 -p tcp .*loadbalancer IP.* --dport 443 -j KUBE-FW-/);
      expect(v6).toMatch(/-A KUBE-SERVICES -d fd00:10:240::200\/128 -p tcp .*external IP.* --dport 443 -j KUBE-EXT-/);
      expect(v6).toMatch(/-A KUBE-FW-\S+ -s fd00:10:241::4\/128 .*-j KUBE-EXT-/);
      const f6 = (await lab(['exec', 'dslb', 'node1', '--', 'ip6tables-save', '-t', 'filter'])).stdout;
      expect(f6).toMatch(/-A KUBE-PROXY-FIREWALL -d fd00:10:240::100\/128 .*-j DROP/);
      // The IPv4 proxier has the IPv4 LB IP and no firewall chain (no IPv4 ranges).
      const v4 = (await lab(['exec', 'dslb', 'node1', '--', 'iptables-save', '-t', 'nat'])).stdout;
      expect(v4).toMatch(/-A KUBE-SERVICES -d 10\.240\.0\.100\/32 .*-j KUBE-EXT-/);
      expect(v4).not.toContain('fd00:');
    } else {
      const v6 = (await lab(['exec', 'dslb', 'node1', '--', 'nft', 'list', 'table', 'ip6', 'kube-proxy'])).stdout;
      expect(v6).toMatch(/fd00:10:240::100 \. tcp \. 443 : goto firewall-/);
      expect(v6).toMatch(/fd00:10:240::200 \. tcp \. 443 : goto external-/);
      // nft prints a one-element set as the element itself.
      expect(v6).toContain('ip6 saddr != fd00:10:241::4 drop');
      const v4 = (await lab(['exec', 'dslb', 'node1', '--', 'nft', 'list', 'table', 'ip', 'kube-proxy'])).stdout;
      expect(v4).toMatch(/10\.240\.0\.100 \. tcp \. 443 : goto external-/);
      expect(v4).not.toContain('firewall-PET3V2EF');
    }
  });

  it('the IPv6 LB IP answers a client inside loadBalancerSourceRanges6 from both pods, and the node saw the LB IP itself', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 30 && seen.size < 2; i++) {
      const pod = await answer('client', 'http://[fd00:10:240::100]:443/');
      expect(pod).toBeDefined();
      seen.add(pod!);
    }
    expect([...seen].sort()).toEqual(['web-1', 'web-2']);
    const entries = await Promise.all(['node1', 'node2'].map((n) => lab(['exec', 'dslb', n, '--', 'conntrack', '-L', '-f', 'ipv6', '-p', 'tcp', '--orig-dst', 'fd00:10:240::100'])));
    expect(entries.map((e) => e.stdout).join('\n')).toMatch(/src=fd00:10:241::4 dst=fd00:10:240::100 sport=\d+ dport=443 src=fd00:10:244(:1)?::(2|3) /);
  });

  it('drops client2 (outside the IPv6 ranges) at the IPv6 LB IP, but lets it in over IPv4 and at the IPv6 external IP', async () => {
    expect(await answer('client2', 'http://[fd00:10:240::100]:443/')).toBeUndefined();
    expect(await answer('client2', 'http://10.240.0.100:443/')).toMatch(/^web-[12]$/);
    expect(await answer('client2', 'http://[fd00:10:240::200]:443/')).toMatch(/^web-[12]$/);
    expect(await answer('client', 'http://[fd00:10:240::200]:443/')).toMatch(/^web-[12]$/);
  });
});
