import { afterAll, describe, expect, it } from 'vitest';
import { lab, namespaces, requireRoot } from './helpers.js';

const root = requireRoot();

/**
 * The IPv6 proxier's stale-chain sweep (docs/dualstack.md): after kill or scale, the removed IPv6
 * endpoint's chain is gone from the node's ip6 tables in the same sync, as upstream's proxier
 * flushes and deletes stale chains (and as the IPv4 proxier of the lab does).
 */
describe.skipIf(!root).each(['iptables', 'nftables'] as const)('dualstack stale IPv6 chains (kube-proxy %s mode)', (mode) => {
  afterAll(async () => {
    await lab(['down', 'dualstack']);
    expect((await namespaces()).filter((n) => n.startsWith('dualstack-'))).toEqual([]);
  });

  /** Names of the per-service chains in node1's ip6 tables that lead to web-2's IPv6 endpoint, [fd00:10:244:1::2]:8443. */
  async function web2Chains6(): Promise<string[]> {
    if (mode === 'nftables') {
      const r = await lab(['exec', 'dualstack', 'node1', '--', 'nft', 'list', 'chains', 'ip6']);
      expect(r.exitCode, r.stderr).toBe(0);
      return [...r.stdout.matchAll(/chain (endpoint-\S+__fd00\.10\.244\.1\.\.2\/8443) \{/g)].map((m) => m[1]!);
    }
    const r = await lab(['exec', 'dualstack', 'node1', '--', 'ip6tables-save', '-t', 'nat']);
    expect(r.exitCode, r.stderr).toBe(0);
    return [...r.stdout.matchAll(/^-A (KUBE-SEP-\S+) .*--to-destination \[fd00:10:244:1::2\]:8443/gm)].map((m) => m[1]!);
  }

  /** Whether a chain is in node1's ip6 tables at all (declared, with or without rules: flushed but not deleted counts). */
  async function has6(chain: string): Promise<boolean> {
    const r = mode === 'nftables'
      ? await lab(['exec', 'dualstack', 'node1', '--', 'nft', 'list', 'chains', 'ip6'])
      : await lab(['exec', 'dualstack', 'node1', '--', 'ip6tables-save', '-t', 'nat']);
    return mode === 'nftables' ? r.stdout.includes(`chain ${chain} {`) : r.stdout.includes(`:${chain} `);
  }

  let chain = '';

  it('comes up with a chain for web-2 in the ip6 tables', async () => {
    await lab(['down', 'dualstack']);
    const up = await lab(['up', 'dualstack', '--set', `kubeProxy.mode=${mode}`], { timeout: 180_000 });
    expect(up.exitCode, up.stderr).toBe(0);
    const chains = await web2Chains6();
    expect(chains).toHaveLength(1);
    chain = chains[0]!;
  });

  it('lab kill deletes the killed pod\'s IPv6 endpoint chain in the same sync; revive brings it back', async () => {
    const k = await lab(['kill', 'dualstack', 'web-2', '--json']);
    expect(k.exitCode, k.stderr).toBe(0);
    const node1 = (JSON.parse(k.stdout) as { rules: { node: string; removed6?: string[] }[] }).rules.find((n) => n.node === 'node1')!;
    expect(node1.removed6).toEqual([chain]);
    expect(await has6(chain)).toBe(false);
    // The IPv6 Service still answers, from web-1 only.
    const r = await lab(['exec', 'dualstack', 'client', '--', 'curl', '-s', '-m', '5', 'http://[fd00:10:240::4]:32000/']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ pod: 'web-1' });
    expect((await lab(['revive', 'dualstack', 'web-2'])).exitCode).toBe(0);
    expect(await has6(chain)).toBe(true);
  });

  it('lab scale down deletes the removed pod\'s IPv6 endpoint chain; scaling up restores it', async () => {
    const s = await lab(['scale', 'dualstack', 'web=1', '--json'], { timeout: 120_000 });
    expect(s.exitCode, s.stderr).toBe(0);
    expect(await has6(chain)).toBe(false);
    const back = await lab(['scale', 'dualstack', 'web=2'], { timeout: 120_000 });
    expect(back.exitCode, back.stderr).toBe(0);
    expect(await web2Chains6()).toEqual([chain]);
  });

  it('a pod scaled in beyond the file gets an IPv6 address and an IPv6 endpoint; scaled away, its chain goes too', async () => {
    const s = await lab(['scale', 'dualstack', 'web=3', '--json'], { timeout: 120_000 });
    expect(s.exitCode, s.stderr).toBe(0);
    const addr = await lab(['exec', 'dualstack', 'web-3', '--', 'ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
    expect(addr.stdout).toContain('inet6 fd00:10:244::2/64');
    const added = (JSON.parse(s.stdout) as { rules: { node: string; added6?: string[] }[] }).rules.find((n) => n.node === 'node1')!.added6 ?? [];
    expect(added).toHaveLength(1);
    // The new pod answers over IPv6 (its endpoint is in the IPv6 proxier's rules).
    const seen = new Set<string>();
    for (let i = 0; i < 40 && !seen.has('web-3'); i++) {
      const r = await lab(['exec', 'dualstack', 'client', '--', 'curl', '-s', '-m', '5', 'http://[fd00:10:240::4]:32000/']);
      expect(r.exitCode, r.stderr).toBe(0);
      seen.add((JSON.parse(r.stdout) as { pod: string }).pod);
    }
    expect(seen.has('web-3')).toBe(true);
    expect((await lab(['scale', 'dualstack', 'web=2'], { timeout: 120_000 })).exitCode).toBe(0);
    expect(await has6(added[0]!)).toBe(false);
  });
});
