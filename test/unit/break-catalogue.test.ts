import { describe, expect, it } from 'vitest';
import { applicableFault, applicableFaults, FAULTS, faultListing, matchDiagnosis } from '../../lab/break/index.js';
import type { FaultContext, Reader } from '../../lab/break/catalogue.js';
import { iptablesServiceChain, nftServiceChain } from '../../lab/break/network-faults.js';
import { faultHost } from '../../lab/workshop/challenge.js';
import { emptiedNftChains } from '../../lab/workshop/health.js';
import { probeStep } from '../../lab/api/fault-probes.js';
import { loadTopology } from '../../lab/topology/load.js';
import { loadWalkthrough } from '../../lab/verify/walkthrough.js';
import { LabError } from '../../lab/errors.js';

const context = (scenario: string, overrides: Record<string, string> = {}): FaultContext => {
  const t = loadTopology(scenario, overrides);
  return { topology: t.topology, walkthrough: loadWalkthrough(t.topology, t.path).walkthrough };
};
const names = (c: FaultContext) => applicableFaults(c).map((f) => f.name);

/** A reader standing in for the live kernel: the first answer whose argv contains the key. */
const reader = (answers: Record<string, string>): Reader => async (_host, argv) => Object.entries(answers).find(([k]) => argv.join(' ').includes(k))?.[1] ?? '';

describe('the fault catalogue', () => {
  it('lists every fault with a name and a one-line description', () => {
    const list = faultListing();
    expect(list.map((f) => f.name)).toEqual(FAULTS.map((f) => f.name));
    for (const f of list) expect(f.description).not.toContain('\n');
  });
  it('applies each fault where it can be seen, per scenario and mode', () => {
    expect(names(context('nodeport'))).toEqual(['route-localnet', 'pod-route-gone', 'service-chain-emptied']);
    expect(names(context('nodeport', { 'kubeProxy.mode': 'nftables' }))).toEqual(['pod-route-gone', 'service-chain-emptied']);
    expect(names(context('nodeport', { 'podNetwork.mode': 'vxlan' }))).toContain('mtu-mismatch');
    expect(names(context('clusterip'))).toEqual(['bridge-nf-call-iptables', 'pod-route-gone', 'service-chain-emptied', 'stale-dns-conntrack']);
    // Strict rp_filter bites only where a node routes its clients back out of another interface.
    expect(names(context('nodeport-multihomed'))).toEqual(['route-localnet', 'pod-route-gone', 'service-chain-emptied', 'rp-filter-strict']);
    expect(names(context('nodeport-multihomed', { 'kubeProxy.mode': 'nftables' }))).toContain('rp-filter-strict');
  });
  it('refuses with exit 2 and the reason, naming the faults that do apply', () => {
    const c = context('nodeport');
    const err = (() => {
      try {
        applicableFault('rp-filter-strict', c, 'np');
      } catch (e) {
        return e as LabError;
      }
    })();
    expect(err?.exitCode).toBe(2);
    expect(err?.message).toMatch(/strict rp_filter drops nothing here.*faults that apply to lab np: route-localnet/);
    expect(() => applicableFault('nope', c, 'np')).toThrow(/no fault named "nope"/);
  });
  it('matches a diagnosis by number, name or words; a tie or no word is no match', () => {
    const choices = applicableFaults(context('clusterip'));
    expect(matchDiagnosis('2', choices)?.name).toBe('pod-route-gone');
    expect(matchDiagnosis('stale-dns-conntrack', choices)?.name).toBe('stale-dns-conntrack');
    expect(matchDiagnosis('br_netfilter is off, replies are bridged', choices)?.name).toBe('bridge-nf-call-iptables');
    expect(matchDiagnosis('something is wrong', choices)).toBeUndefined();
  });
});

describe('fault plans from what was read of the lab', () => {
  it("rp-filter-strict: node1's eth0 set to 1, put back as it was read; fixed when neither conf.all nor conf.eth0 is strict", async () => {
    const rp = FAULTS.find((f) => f.name === 'rp-filter-strict')!;
    const plan = await rp.plan(context('nodeport-multihomed'), reader({ rp_filter: '2\n' }));
    expect(plan.summary).toBe('net.ipv4.conf.eth0.rp_filter=1 on node1, whose route back to the clients leaves by eth1');
    expect(plan.breakSteps).toEqual([{ host: 'node1', argv: ['sysctl', '-qw', 'net.ipv4.conf.eth0.rp_filter=1'] }]);
    expect(plan.repairSteps).toEqual([{ host: 'node1', argv: ['sysctl', '-qw', 'net.ipv4.conf.eth0.rp_filter=2'] }]);
    const healthy = (out: string) => new RegExp(plan.healthy.pattern, 'm').test(out);
    expect([healthy('0\n0\n'), healthy('0\n2\n'), healthy('2\n0\n'), healthy('0\n1\n'), healthy('1\n0\n')]).toEqual([true, true, true, false, false]);
    expect(plan.healthy.argv).toEqual(['sysctl', '-n', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.eth0.rp_filter']);
  });
  it('pod-route-gone: the router route (routed), the node route (host-gw), the FDB entry (vxlan), the BGP session (bgp)', async () => {
    const route = '10.244.1.0/24 via 10.240.0.5 dev br-nodes';
    const routed = await FAULTS.find((f) => f.name === 'pod-route-gone')!.plan(context('nodeport'), reader({ 'route show': route }));
    expect(faultHost(routed)).toBe('router');
    expect(routed.breakSteps[0]!.argv).toEqual(['ip', 'route', 'del', '10.244.1.0/24']);
    expect(routed.repairSteps[0]!.argv).toEqual(['ip', 'route', 'replace', ...route.split(' ')]);
    const hostGw = await FAULTS.find((f) => f.name === 'pod-route-gone')!.plan(context('nodeport', { 'podNetwork.mode': 'host-gw' }), reader({ 'route show': '10.244.1.0/24 via 10.240.0.5 dev eth0' }));
    expect(faultHost(hostGw)).toBe('node1');
    const vxlan = await FAULTS.find((f) => f.name === 'pod-route-gone')!.plan(context('nodeport', { 'podNetwork.mode': 'vxlan' }), reader({ fdb: '0e:fa:0a:f0:00:05 dst 10.240.0.5 self permanent\n' }));
    expect(vxlan.breakSteps[0]!.argv).toEqual(['bridge', 'fdb', 'del', '0e:fa:0a:f0:00:05', 'dev', 'flannel.1', 'dst', '10.240.0.5', 'self']);
    expect(vxlan.healthy.pattern).toBe('dst 10.240.0.5 ');
    const bgp = await FAULTS.find((f) => f.name === 'pod-route-gone')!.plan(context('nodeport', { 'podNetwork.mode': 'bgp' }), reader({}));
    expect(bgp.breakSteps[0]!.argv).toContain('disable');
    expect(bgp.repairSteps[0]!.argv).toContain('enable');
  });
  it('pod-route-gone refuses to plan when the route is not there to delete', async () => {
    await expect(FAULTS.find((f) => f.name === 'pod-route-gone')!.plan(context('nodeport'), reader({}))).rejects.toThrow(/has no route to 10\.244\.1\.0\/24/);
  });
  it('route-localnet probes the localhost NodePort on node1', async () => {
    const p = await FAULTS.find((f) => f.name === 'route-localnet')!.plan(context('nodeport'), reader({}));
    expect(p.probes).toEqual([{ from: 'node1', to: '127.0.0.1:32000', what: 'a localhost NodePort on node1' }]);
    expect(p.breakSteps[0]!.argv).toEqual(['sysctl', '-qw', 'net.ipv4.conf.all.route_localnet=0']);
  });
  it('stale-dns-conntrack plants untranslated entries and restores the port range it read', async () => {
    const p = await FAULTS.find((f) => f.name === 'stale-dns-conntrack')!.plan(context('clusterip'), reader({ ip_local_port_range: '32768\t60999\n' }));
    expect(p.breakSteps.filter((s) => s.argv[0] === 'conntrack')).toHaveLength(8);
    expect(p.repairSteps.at(-1)!.argv).toEqual(['sysctl', '-qw', 'net.ipv4.ip_local_port_range=32768 60999']);
    expect(p.healthy.absent).toBe(true);
  });
});

describe('reading kube-proxy chains', () => {
  it("finds a Service's KUBE-SVC chain and its rules in iptables-save", () => {
    const save = [
      '-A KUBE-SERVICES -d 172.31.0.5/32 -p tcp -m comment --comment "default/web:https cluster IP" -j KUBE-SVC-ABC',
      '-A KUBE-SVC-ABC -m comment --comment "default/web:https -> 10.244.0.3:8443" -j KUBE-SEP-1',
      '-A KUBE-SVC-ABC -m comment --comment "default/web:https -> 10.244.1.2:8443" -j KUBE-SEP-2',
    ].join('\n');
    expect(iptablesServiceChain(save, { ns: 'default', name: 'web' })).toEqual({ chain: 'KUBE-SVC-ABC', rules: save.split('\n').slice(1) });
    expect(iptablesServiceChain(save, { ns: 'default', name: 'other' })).toBeUndefined();
  });
  it('finds the service- chain in nft list, and tells an emptied chain', () => {
    const listing = 'table ip kube-proxy {\n\tchain service-AAAA-default/web/tcp/https {\n\t}\n\tchain endpoint-BBBB-default/web/tcp/https__10.244.0.3/8443 {\n\t\tdnat to 10.244.0.3:8443\n\t}\n}\n';
    expect(nftServiceChain(listing, { ns: 'default', name: 'web' })).toBe('service-AAAA-default/web/tcp/https');
    const payload = 'add rule ip kube-proxy service-AAAA-default/web/tcp/https numgen random mod 1 vmap { 0 : goto x }\nadd rule ip kube-proxy endpoint-BBBB-default/web/tcp/https__10.244.0.3/8443 dnat to 10.244.0.3:8443\n';
    expect(emptiedNftChains(payload, listing)).toEqual(['service-AAAA-default/web/tcp/https']);
  });
});

describe('symptom probes as verify steps', () => {
  it('say how many of the requests were answered', () => {
    const probe = { from: 'node1', to: '127.0.0.1:32000', what: 'a localhost NodePort on node1' };
    expect(probeStep({ probe, fault: 'route-localnet', answered: 0, sent: 4, seen: '0 of 4 requests answered: 4 timed out' }, 0)).toMatchObject({ status: 'fail', expected: 'node1 > 127.0.0.1:32000 answered (all 4 requests)' });
    expect(probeStep({ probe, fault: 'route-localnet', answered: 4, sent: 4, seen: '4 of 4 requests answered' }, 0).status).toBe('pass');
  });
});
