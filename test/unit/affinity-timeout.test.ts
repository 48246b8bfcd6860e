import { describe, expect, it } from 'vitest';
import { parseJiffies, parseRecentList, remembered, tickRate, type AffinityState } from '../../lab/kernel/affinity.js';
import { judgeAffinityExpired, type AffinityWaitEvidence } from '../../lab/verify/affinity-expiry.js';
import { loadTopology } from '../../lab/topology/load.js';
import { kubeProxyRules } from '../../lab/plan/kube-proxy/iptables.js';
import { nftablesRules } from '../../lab/plan/kube-proxy/nftables.js';
import { loadWalkthrough } from '../../lab/verify/walkthrough.js';
import { problemsOf } from './helpers.js';

/** sessionAffinityConfig.clientIP.timeoutSeconds: the kernel readers' parsing, the expiry test, the judge. */

const TIMER_LIST = `Timer List Version: v0.10
HRTIMER_MAX_CLOCK_BASES: 8
now at 13102249930557 nsecs

cpu: 0
 clock 0:
jiffies: 4298167818
`;
const XT_RECENT = 'src=10.241.0.4 ttl: 63 last_seen: 4298167810 oldest_pkt: 2 4298167483, 4298167810\nsrc=10.244.0.10 ttl: 64 last_seen: 4298160000 oldest_pkt: 1 4298160000\n';

describe('reading affinity memory and the kernel clock', () => {
  it('reads jiffies and the monotonic clock from /proc/timer_list', () => {
    expect(parseJiffies(TIMER_LIST)).toEqual({ jiffies: 4298167818, ns: 13102249930557 });
    expect(parseJiffies('nothing here')).toBeUndefined();
  });

  it('tells the tick rate from two samples, once they are far enough apart', () => {
    const a = { jiffies: 1000, ns: 0 };
    expect(tickRate(a, { jiffies: 1025, ns: 100e6 })).toBe(250);
    expect(tickRate(a, { jiffies: 1100, ns: 100e6 })).toBe(1000);
    expect(tickRate(a, { jiffies: 1002, ns: 10e6 })).toBeUndefined();
    expect(tickRate(a, { jiffies: 1060, ns: 100e6 })).toBeUndefined();
  });

  it("parses an xt_recent list: each source with its timestamps, oldest first", () => {
    expect(parseRecentList('KUBE-SEP-X', '10.244.0.3:8443', XT_RECENT)).toEqual([
      { set: 'KUBE-SEP-X', endpoint: '10.244.0.3:8443', client: '10.241.0.4', stamps: [4298167483, 4298167810] },
      { set: 'KUBE-SEP-X', endpoint: '10.244.0.3:8443', client: '10.244.0.10', stamps: [4298160000] },
    ]);
  });

  it("judges expiry as xt_recent does (jiffies - stamp <= seconds * HZ), and as nft lists elements", () => {
    const entries = parseRecentList('KUBE-SEP-X', '10.244.0.3:8443', XT_RECENT);
    const at = (jiffies: number): AffinityState => ({ mode: 'iptables', entries, timeouts: { 'KUBE-SEP-X': 3 }, sample: { jiffies, ns: 0 } });
    expect(remembered(at(4298167810 + 750), '10.241.0.4', 250)).toBe(true);
    expect(remembered(at(4298167810 + 751), '10.241.0.4', 250)).toBe(false);
    expect(remembered(at(4298167810 + 751), '10.241.0.4', undefined)).toBeUndefined();
    expect(remembered(at(4298167810), '10.9.9.9', 250)).toBe(false);
    const nft: AffinityState = { mode: 'nftables', entries: [{ set: 'affinity-A', endpoint: '10.244.0.3:8443', client: '10.241.0.4', expiresS: 2 }], timeouts: { 'affinity-A': 3 } };
    expect(remembered(nft, '10.241.0.4')).toBe(true);
    expect(remembered({ ...nft, entries: [] }, '10.241.0.4')).toBe(false);
  });
});

describe('the affinityExpired check', () => {
  const before = [{ set: 'KUBE-SEP-A', endpoint: '10.244.0.3:8443', client: '10.241.0.4', stamps: [100, 200], ageS: 0.1 }];
  const wait: AffinityWaitEvidence = {
    node: 'node1', client: '10.241.0.4', timeoutS: 3, before, expired: true, waitedMs: 3050, polls: 30, affinityHits: 9, hitsAtRunStart: 0, hitsAfter: 13, hz: 250,
    after: [{ set: 'KUBE-SEP-B', endpoint: '10.244.1.2:8443', client: '10.241.0.4', stamps: [1100] }],
  };

  it('passes: remembered, forgotten, the first new connection missed the affinity rules, a fresh entry', () => {
    const v = judgeAffinityExpired('10.241.0.4', 'node1', wait, 5);
    expect(v.ok, v.seen).toBe(true);
    expect(v.seen).toContain('the affinity rules matched 9 earlier connections');
    expect(v.seen).toContain('counted 4 of 5 connections');
  });

  it('fails when the first connection after the wait still matched an affinity rule', () => {
    expect(judgeAffinityExpired('10.241.0.4', 'node1', { ...wait, hitsAfter: 14 }, 5).ok).toBe(false);
  });

  it('fails when nothing was remembered, or the kernel never forgot it before the deadline', () => {
    expect(judgeAffinityExpired('10.241.0.4', 'node1', { ...wait, before: [] }, 5).seen).toContain('nothing to expire');
    expect(judgeAffinityExpired('10.241.0.4', 'node1', { ...wait, expired: false }, 5).seen).toContain('still remembered');
    expect(judgeAffinityExpired('10.241.0.4', 'node1', undefined, 5).ok).toBe(false);
  });

  it('fails when the entry afterwards is the old one (not rewritten)', () => {
    expect(judgeAffinityExpired('10.241.0.4', 'node1', { ...wait, after: before }, 5).ok).toBe(false);
  });

  it('nftables mode: no counters, the set elements tell it', () => {
    const nft: AffinityWaitEvidence = { node: 'node1', client: '10.241.0.4', timeoutS: 3, before: [{ set: 'affinity-A', endpoint: '10.244.0.3:8443', client: '10.241.0.4', expiresS: 2 }], expired: true, waitedMs: 2100, polls: 20, after: [{ set: 'affinity-B', endpoint: '10.244.1.2:8443', client: '10.241.0.4', expiresS: 3 }] };
    expect(judgeAffinityExpired('10.241.0.4', 'node1', nft, 5).ok).toBe(true);
    expect(judgeAffinityExpired('10.241.0.4', 'node1', { ...nft, after: [] }, 5).ok).toBe(false);
  });
});

describe('the timeout in the rules and the walkthrough', () => {
  const t = loadTopology('affinity', { 'services.web.sessionAffinityTimeoutSeconds': '3', walkthrough: 'affinity-timeout.walkthrough.yaml' });

  it('writes the --set timeout into both modes', () => {
    const checks = kubeProxyRules(t.topology, 'node1').nat.rules.filter((r) => r.args.includes('--rcheck'));
    expect(checks).toHaveLength(2);
    for (const r of checks) expect(r.args.join(' ')).toContain('--seconds 3 --reap');
    const sets = nftablesRules({ ...t.topology, kubeProxy: { mode: 'nftables' } }, 'node1').containers.filter((c) => c.name.startsWith('affinity-'));
    expect(sets.map((s) => [s.flags, s.timeout])).toEqual([['dynamic,timeout', 3], ['dynamic,timeout', 3]]);
  });

  it('the walkthrough loads, and afterAffinityExpiry must name a node', () => {
    const w = loadWalkthrough(t.topology, t.path).walkthrough;
    expect(w.paths[1]!.traffic!.afterAffinityExpiry).toBe('node1');
    const bad = { ...t.topology, nodes: t.topology.nodes.filter((n) => n.name !== 'node1') };
    expect(problemsOf(() => loadWalkthrough(bad, t.path)).some((p) => p.field.includes('afterAffinityExpiry'))).toBe(true);
  });
});

describe('the affinityExpired check, limits', () => {
  const base: AffinityWaitEvidence = { node: 'node1', client: '10.241.0.4', timeoutS: 10800, before: [{ set: 'KUBE-SEP-A', endpoint: '10.244.0.3:8443', client: '10.241.0.4', stamps: [100] }], expired: false, waitedMs: 0, polls: 1, affinityHits: 3, hitsAtRunStart: 0, hitsAfter: 4, after: [] };
  it('a timeout longer than verify waits fails at once, naming the way out', () => {
    expect(judgeAffinityExpired('10.241.0.4', 'node1', { ...base, tooLong: true }, 1).seen).toMatch(/10800 s timeout is longer than verify waits \(60 s\).*sessionAffinityTimeoutSeconds=3/);
  });
  it('an unknown tick rate is named, not reported as "still remembered"', () => {
    expect(judgeAffinityExpired('10.241.0.4', 'node1', { ...base, timeoutS: 3, waitedMs: 13000 }, 1).seen).toContain('tick rate could not be read');
  });
});
