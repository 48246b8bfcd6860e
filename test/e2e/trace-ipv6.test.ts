import { afterAll, describe, expect, it } from 'vitest';
import type { TraceResult } from '../../lab/api/trace.js';
import { lab, requireRoot, sh, startLab } from './helpers.js';

const root = requireRoot();
const LAB = 'dualstack';
const TO = '[fd00:10:240::4]:32000';

/** Nothing of an IPv6 trace may stay: no table of its own, no ip6 raw table it made, no TRACE rule, no monitor. */
async function expectNoTraceLeft(): Promise<void> {
  for (const host of ['node1', 'node2', 'router']) {
    const tables = await sh('ip', ['netns', 'exec', `${LAB}-${host}`, 'nft', 'list', 'tables']);
    expect(tables, host).not.toMatch(/lab-trace|table ip6? raw/);
    const raw = await sh('ip', ['netns', 'exec', `${LAB}-${host}`, 'ip6tables-save', '-t', 'raw']);
    expect(raw, host).not.toMatch(/lab-trace|TRACE/);
  }
  // Zombies do not count: under the test's pid namespace, vitest is pid 1 and reaps no orphans.
  const alive = (await sh('ps', ['-eo', 'stat=,args='])).split('\n').filter((l) => !l.trim().startsWith('Z') && /xtables-monitor|nft monitor/.test(l));
  expect(alive).toEqual([]);
}

const trace = async () => {
  const r = await lab(['trace', LAB, '--from', 'client', '--to', TO, '--json']);
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as TraceResult;
};

describe.skipIf(!root).each(['iptables', 'nftables'] as const)('lab trace over IPv6 on the dualstack lab (kube-proxy %s mode)', (mode) => {
  afterAll(async () => {
    await lab(['down', LAB]);
  });

  it("walks kube-proxy's ip6 chains, the DNAT to a pod's IPv6 address, the MASQUERADE to node1's for web-2", async () => {
    await lab(['down', LAB]);
    const up = await lab(['up', LAB, '--set', `kubeProxy.mode=${mode}`]);
    expect(up.exitCode, up.stderr).toBe(0);
    // Right after up: the trace waits out the link-local addresses' duplicate address detection.
    const seen = new Set<string>();
    let cross: TraceResult | undefined;
    for (let i = 0; i < 12 && (!cross || seen.size < 2); i++) {
      const r = await trace();
      expect(r.mode).toBe(mode);
      expect(r.flow.client).toMatch(/^\[fd00:10:241::4\]:\d+$/);
      expect(r.flow.answer, r.flow.error).toBeDefined();
      seen.add(r.flow.answer!.pod);
      const node1 = r.hops.find((h) => h.host === 'node1' && h.direction === 'request')!;
      expect(node1.packet).toBe(`${r.flow.client} > ${TO} [S]`);
      const rules = node1.hooks.flatMap((h) => h.rules);
      const chains = rules.map((x) => x.chain);
      const order = mode === 'iptables' ? ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-EXT-', 'KUBE-SVC-', 'KUBE-SEP-'] : ['services', 'external-', 'service-', 'endpoint-'];
      const at = order.map((p) => chains.findIndex((c) => c.startsWith(p)));
      expect(at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1]!)), chains.join(' ')).toBe(true);
      if (mode === 'iptables') expect(rules.every((x) => ['nat', 'filter', 'mangle'].includes(x.table))).toBe(true);
      const pod6 = r.flow.answer!.pod === 'web-2' ? '[fd00:10:244:1::2]:8443' : '[fd00:10:244::3]:8443';
      // iptables mode: the rules as ip6tables-save prints them, comments and all.
      const dnat = rules.find((x) => x.rule.includes(mode === 'iptables' ? `-j DNAT --to-destination ${pod6}` : `dnat to ${pod6}`))!;
      if (mode === 'iptables') expect(dnat.comment).toBe('default/web:https');
      expect(dnat.nat).toBe(`now ${r.flow.client} > ${pod6}`);
      const back = r.hops.find((h) => h.host === 'node1' && h.direction === 'reply')!;
      expect(back.notes.join(' ')).toContain(`it leaves as ${TO} > ${r.flow.client}`);
      // Nothing of this connection died (an NDP packet freed meanwhile is not its drop).
      expect(r.drops).toEqual([]);
      if (r.flow.answer!.pod === 'web-2') cross = r;
    }
    expect([...seen].sort()).toEqual(['web-1', 'web-2']);
    const node1 = cross!.hops.find((h) => h.host === 'node1' && h.direction === 'request')!;
    expect(node1.hooks.flatMap((h) => h.rules).some((x) => x.rule === (mode === 'iptables' ? '-j MASQUERADE --random-fully' : 'masquerade fully-random'))).toBe(true);
    expect(node1.notes.join(' ')).toMatch(/rewritten as it leaves .*: \[fd00:10:240::4\]:\d+ > \[fd00:10:244:1::2\]:8443/);
    expect(cross!.hops.some((h) => h.host === 'node2' && h.direction === 'request' && h.packet.startsWith('[fd00:10:240::4]:'))).toBe(true);
    await expectNoTraceLeft();
  });

  it('prints the IPv6 walk for a terminal', async () => {
    const r = await lab(['trace', LAB, '--from', 'client', '--to', TO], { env: { NO_COLOR: '1' } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`kube-proxy mode ${mode}; the kernel's own trace (nft monitor trace) in node1, node2, router`);
    expect(r.stdout).toMatch(/→ now \[fd00:10:241::4\]:\d+ > \[fd00:10:244(:1)?::[23]\]:8443/);
    await expectNoTraceLeft();
  });

  it('gives the kernel\'s drop reason for an IPv6 packet: NO_SOCKET on node1 for a port no Service has', async () => {
    const r = await lab(['trace', LAB, '--from', 'client', '--to', '[fd00:10:240::4]:32001', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const t = JSON.parse(r.stdout) as TraceResult;
    expect(t.flow.answer).toBeUndefined();
    expect(t.drops).toEqual([expect.objectContaining({ reason: 'NO_SOCKET', host: 'node1', device: 'eth0', direction: 'request', location: expect.stringMatching(/^tcp_v6_rcv\+/) })]);
    await expectNoTraceLeft();
  });

  it('a SIGKILLed IPv6 trace leaves its ip6 rules and monitors; the next trace sweeps them', async () => {
    const rulesIn = async (host: string) =>
      mode === 'iptables'
        ? (await sh('ip', ['netns', 'exec', `${LAB}-${host}`, 'ip6tables-save', '-t', 'raw'])).split('\n').filter((l) => l.includes('lab-trace-')).length
        : (await sh('ip', ['netns', 'exec', `${LAB}-${host}`, 'nft', 'list', 'tables'])).split('\n').filter((l) => /^table ip6 lab-trace-/.test(l)).length;
    const want = mode === 'iptables' ? 8 : 1;
    // To an address nobody answers: the trace waits a second for curl with its rules in place.
    const t = startLab(['trace', LAB, '--from', 'client', '--to', '[fd00:10:240::99]:80']);
    const deadline = Date.now() + 20_000;
    while ((await rulesIn('node1')) < want) {
      if (Date.now() > deadline) throw new Error('the trace never put its rules in');
      await new Promise((r) => setTimeout(r, 20));
    }
    t.kill('SIGKILL');
    await t;
    expect(await rulesIn('node1')).toBe(want);
    const next = await lab(['trace', LAB, '--from', 'client', '--to', TO]);
    expect(next.exitCode, next.stderr).toBe(0);
    await expectNoTraceLeft();
  });

  it('removes its ip6 rules and monitors when interrupted (SIGINT, SIGTERM)', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const child = startLab(['trace', LAB, '--from', 'client', '--to', TO], { env: { LAB_LOG_LEVEL: 'debug' } });
      // Interrupt once the rules are in place and every monitor saw them: the trace is waiting for
      // tentative addresses before it sends.
      const marker = 'addr show tentative';
      await new Promise<void>((resolve) => {
        child.stderr!.on('data', (d: Buffer) => {
          if (d.toString().includes(marker)) resolve();
        });
      });
      child.kill(signal);
      const r = await child;
      expect(r.exitCode, signal).not.toBe(0);
      await expectNoTraceLeft();
    }
  });
});
