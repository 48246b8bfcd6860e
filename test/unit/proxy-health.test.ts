import { describe, expect, it } from 'vitest';
import { goTime, healthz, livez, nodeEligible, PROXY_HEALTH_PORT, PROXY_HEALTH_TIMEOUT_MS, proxyHealthServers, type ProxyHealthState } from '../../lab/plan/kube-proxy/proxy-health.js';
import { expectedNextHops, loadBalancerChecks } from '../../lab/plan/kube-proxy/health.js';
import { loadTopology } from '../../lab/topology/load.js';
import { applyNodeChanges, nodeVerdict, parseTaint, planNodeChange, recordNodeChange, taintText } from '../../lab/plan/node-changes.js';
import { problemsOf } from './helpers.js';

/** kube-proxy's /healthz and /livez answers (proxy_health.go, v1.34), from its sync state and the node's. */
const START = Date.parse('2026-12-07T08:00:00.000Z');
const NOW = START + 90_500;
const state = (over: Partial<ProxyHealthState> = {}): ProxyHealthState => ({ lastUpdated: START + 1000, nodeEligible: true, healthTimeoutMs: PROXY_HEALTH_TIMEOUT_MS, ...over });

describe("kube-proxy's own health (port 10256)", () => {
  it("prints times as Go's %q of a time.Time does: trimmed fraction, UTC, the monotonic reading", () => {
    expect(goTime(NOW, NOW - START)).toBe('2026-12-07 08:01:30.5 +0000 UTC m=+90.500000000');
    expect(goTime(START)).toBe('2026-12-07 08:00:00 +0000 UTC');
    expect(goTime(undefined)).toBe('0001-01-01 00:00:00 +0000 UTC');
  });

  it('healthy: 200, lastUpdated is now, nodeEligible true; /livez has no nodeEligible', () => {
    const now = `"2026-12-07 08:01:30.5 +0000 UTC m=+90.500000000"`;
    expect(healthz(state(), NOW, START)).toEqual({ status: 200, body: `{"lastUpdated": ${now},"currentTime": ${now}, "nodeEligible": true}` });
    expect(livez(state(), NOW, START)).toEqual({ status: 200, body: `{"lastUpdated": ${now},"currentTime": ${now}}` });
  });

  it('a change queued longer than the timeout: both 503, lastUpdated the last sync; a younger one is still healthy', () => {
    const late = state({ oldestPending: NOW - PROXY_HEALTH_TIMEOUT_MS });
    expect(healthz(late, NOW, START).status).toBe(503);
    expect(livez(late, NOW, START)).toEqual({ status: 503, body: `{"lastUpdated": "2026-12-07 08:00:01 +0000 UTC m=+1.000000000","currentTime": "2026-12-07 08:01:30.5 +0000 UTC m=+90.500000000"}` });
    expect(healthz(state({ oldestPending: NOW - PROXY_HEALTH_TIMEOUT_MS + 1 }), NOW, START).status).toBe(200);
    expect(healthz(state({ lastUpdated: undefined, oldestPending: START }), NOW, START).status).toBe(200); // starting up
  });

  it('a node being deleted or tainted ToBeDeletedByClusterAutoscaler: /healthz 503 with nodeEligible false, /livez 200', () => {
    expect(nodeEligible({ taints: [{ key: 'ToBeDeletedByClusterAutoscaler' }] })).toBe(false);
    expect(nodeEligible({ deleting: true })).toBe(false);
    expect(nodeEligible({ taints: [{ key: 'other' }] })).toBe(true);
    const s = state({ nodeEligible: false });
    expect(healthz(s, NOW, START).status).toBe(503);
    expect(healthz(s, NOW, START).body).toMatch(/"lastUpdated": "2026-12-07 08:00:01 \+0000 UTC m=\+1\.000000000",.*, "nodeEligible": false\}$/);
    expect(livez(s, NOW, START).status).toBe(200);
  });
});

describe("kube-proxy's health server on every node, and a load balancer following /healthz", () => {
  const load = (set: Record<string, string> = {}) => loadTopology('loadbalancer', set).topology;

  it('one server per node on 0.0.0.0:10256, ineligible where the node is being deleted', () => {
    const servers = proxyHealthServers(load({ 'nodes.node2.deleting': 'true' }));
    expect(servers.map((s) => [s.node, s.ns, s.address, s.port, s.nodeEligible])).toEqual([
      ['node1', 'loadbalancer-node1', '0.0.0.0', 10256, true],
      ['node2', 'loadbalancer-node2', '0.0.0.0', 10256, false],
    ]);
  });

  it('no check of /healthz unless loadBalancer.proxyHealthz; with it, the Cluster Service route probes port 10256', () => {
    expect(loadBalancerChecks(load())).toEqual([]);
    const t = load({ 'loadBalancer.proxyHealthz': 'true' });
    expect(loadBalancerChecks(t).map((c) => [c.router, c.to, c.port, c.nodes])).toEqual([['router', '10.240.0.100/32', PROXY_HEALTH_PORT, ['10.240.0.4', '10.240.0.5']]]);
    expect(expectedNextHops(t, loadBalancerChecks(t)[0]!)).toEqual(['10.240.0.4', '10.240.0.5']);
  });

  it('a node being deleted leaves the next hops; every node deleted: all kept (fail open)', () => {
    const t = load({ 'loadBalancer.proxyHealthz': 'true', 'nodes.node2.deleting': 'true' });
    expect(expectedNextHops(t, loadBalancerChecks(t)[0]!)).toEqual(['10.240.0.4']);
    const all = load({ 'loadBalancer.proxyHealthz': 'true', 'nodes.node1.deleting': 'true', 'nodes.node2.deleting': 'true' });
    expect(expectedNextHops(all, loadBalancerChecks(all)[0]!)).toEqual(['10.240.0.4', '10.240.0.5']);
  });

  it('externalTrafficPolicy Local keeps following its healthCheckNodePort, not /healthz', () => {
    const t = loadTopology('loadbalancer-local', { 'loadBalancer.proxyHealthz': 'true' }).topology;
    expect(loadBalancerChecks(t).map((c) => c.port)).toEqual([t.services[0]!.healthCheckNodePort]);
  });
});

describe('Node taints and run-time node changes (lab node)', () => {
  const load = (set: Record<string, string> = {}) => loadTopology('loadbalancer', set).topology;
  const CA = '[{ key: ToBeDeletedByClusterAutoscaler, value: "1765100000", effect: NoSchedule }]';

  it('a node tainted ToBeDeletedByClusterAutoscaler in the topology: not eligible, out of the /healthz-following route; another taint changes nothing', () => {
    const t = load({ 'loadBalancer.proxyHealthz': 'true', 'nodes.node2.taints': CA });
    expect(proxyHealthServers(t).map((s) => s.nodeEligible)).toEqual([true, false]);
    expect(expectedNextHops(t, loadBalancerChecks(t)[0]!)).toEqual(['10.240.0.4']);
    const other = load({ 'nodes.node2.taints': '[{ key: example.com/maintenance, effect: NoExecute }]' });
    expect(proxyHealthServers(other).map((s) => s.nodeEligible)).toEqual([true, true]);
  });

  it('a taint with an effect Kubernetes does not have, or a key that is no qualified name, is refused with its field', () => {
    expect(problemsOf(() => load({ 'nodes.node2.taints': '[{ key: ToBeDeletedByClusterAutoscaler, effect: Sometimes }]' }))).toEqual([expect.objectContaining({ field: 'nodes[1].taints[0].effect' })]);
    expect(problemsOf(() => load({ 'nodes.node2.taints': '[{ key: "bad key", effect: NoSchedule }]' }))).toEqual([expect.objectContaining({ field: 'nodes[1].taints[0].key' })]);
  });

  it("parses kubectl taint's key[=value]:Effect and refuses the rest", () => {
    expect(parseTaint('ToBeDeletedByClusterAutoscaler=1765100000:NoSchedule')).toEqual({ key: 'ToBeDeletedByClusterAutoscaler', value: '1765100000', effect: 'NoSchedule' });
    expect(parseTaint('example.com/x:NoExecute')).toEqual({ key: 'example.com/x', effect: 'NoExecute' });
    expect(() => parseTaint('ToBeDeletedByClusterAutoscaler')).toThrow(/key\[=value\]:Effect/);
    expect(() => parseTaint('ToBeDeletedByClusterAutoscaler:Sometimes')).toThrow(/effect/);
    expect(taintText(parseTaint('a=b:NoSchedule'))).toBe('a=b:NoSchedule');
  });

  it('a change replaces a taint of the same key and effect, untaint by key or key:Effect, refuses a taint the node lacks or a node the lab lacks', () => {
    const t = load({ 'nodes.node2.taints': '[{ key: a, effect: NoSchedule }, { key: a, effect: NoExecute }]' });
    const add = planNodeChange(t, 'node2', { taint: [{ key: 'a', value: 'v', effect: 'NoSchedule' }] });
    expect(add.after.taints).toEqual([{ key: 'a', effect: 'NoExecute' }, { key: 'a', value: 'v', effect: 'NoSchedule' }]);
    expect(planNodeChange(t, 'node2', { untaint: ['a:NoExecute'] }).after.taints).toEqual([{ key: 'a', effect: 'NoSchedule' }]);
    expect(planNodeChange(t, 'node2', { untaint: ['a'] }).after.taints).toEqual([]);
    expect(() => planNodeChange(t, 'node2', { untaint: ['b'] })).toThrow(/no taint b/);
    expect(() => planNodeChange(t, 'node9', { deleting: true })).toThrow(/no node "node9"/);
    // Only what was asked is recorded: a deletion mark leaves the file's taints alone.
    expect(planNodeChange(t, 'node2', { deleting: true }).change).toEqual({ deleting: true });
  });

  it('the running lab is the file plus the recorded node changes, later ones over earlier ones', () => {
    const t = load({ 'loadBalancer.proxyHealthz': 'true' });
    let changes = recordNodeChange(undefined, 'node2', { deleting: true });
    changes = recordNodeChange(changes, 'node2', { taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule' }] });
    const running = applyNodeChanges(t, changes);
    expect(running.nodes[1]).toMatchObject({ deleting: true, taints: [{ key: 'ToBeDeletedByClusterAutoscaler' }] });
    expect(nodeVerdict(running.nodes[1]!)).toEqual({ nodeEligible: false, healthz: 503 });
    const back = applyNodeChanges(t, recordNodeChange(changes, 'node2', { deleting: false, taints: [] }));
    expect(nodeVerdict(back.nodes[1]!)).toEqual({ nodeEligible: true, healthz: 200 });
    expect(applyNodeChanges(t, {})).toBe(t);
  });
});
