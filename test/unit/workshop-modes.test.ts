import { describe, expect, it } from 'vitest';
import { type InputProblem } from '../../lab/errors.js';
import { loadTopology } from '../../lab/topology/load.js';
import { POD_NETWORK_MODES } from '../../lab/topology/schema.js';
import { YamlFile } from '../../lab/util/yaml-file.js';
import { availableWorkshops, loadWorkshop, parseWorkshop } from '../../lab/workshop/load.js';
import { stepInModes, workshopInModes } from '../../lab/workshop/modes.js';
import { firstHost, podNetworkExpectations } from '../../lab/workshop/pod-network-health.js';
import { nftChainsOf, nftTableOf, nftValue } from '../../lab/workshop/probes.js';
import { answerKind, checkKind, PROXY_MODES, type Check, type WorkshopStep } from '../../lab/workshop/schema.js';
import { problemsOf } from './helpers.js';

/** Every built-in scenario, and the workshop a lab of it asks in one combination of modes. */
const SCENARIOS = ['affinity', 'clusterip', 'dualstack', 'internal-local', 'lb-source-ranges', 'loadbalancer', 'loadbalancer-local', 'nodeport', 'nodeport-local', 'nodeport-multihomed', 'traffic-distribution'];
const asked = (scenario: string, set: Record<string, string>) => {
  const t = loadTopology(scenario, set);
  return loadWorkshop(t.topology, t.path).workshop;
};
/** The pod-network modes a scenario can be brought up in (dualstack: not host-gw and the others without IPv6 yet). */
const podNetworksOf = (scenario: string) =>
  POD_NETWORK_MODES.filter((m) => {
    try {
      loadTopology(scenario, { 'podNetwork.mode': m });
      return true;
    } catch {
      return false;
    }
  });
const kinds = (steps: WorkshopStep[]) => steps.map((s) => checkKind(s.check));

describe('workshops in every mode', () => {
  it('every built-in scenario has a workshop', () => {
    expect(availableWorkshops()).toEqual(SCENARIOS);
  });

  it('in nftables mode every rule question is an nftables question; in iptables mode none is', () => {
    for (const scenario of SCENARIOS) {
      for (const podNetwork of podNetworksOf(scenario)) {
        const nft = asked(scenario, { 'kubeProxy.mode': 'nftables', 'podNetwork.mode': podNetwork });
        const ipt = asked(scenario, { 'kubeProxy.mode': 'iptables', 'podNetwork.mode': podNetwork });
        expect(kinds(nft.steps), `${scenario} nftables ${podNetwork}`).not.toContain('rule');
        expect(kinds(ipt.steps), `${scenario} iptables ${podNetwork}`).not.toContain('nft');
        // The same steps, asked differently: an iptables rule question became an nft one, the rest stayed.
        expect(nft.steps.map((s) => s.id)).toEqual(ipt.steps.map((s) => s.id));
        ipt.steps.forEach((s, i) => {
          if (s.check.rule) expect(nft.steps[i]!.check.nft ?? nft.steps[i]!.check.value, `${scenario}/${s.id}`).toBeDefined();
        });
      }
    }
  });

  it('nftables questions name the objects kube-proxy writes: verdict maps, service-/endpoint- chains, numgen', () => {
    const nft = SCENARIOS.flatMap((s) => asked(s, { 'kubeProxy.mode': 'nftables' }).steps.flatMap((st) => (st.check.nft ? [st.check.nft] : [])));
    expect(nft.map((c) => c.map).filter(Boolean)).toEqual(expect.arrayContaining(['service-ips', 'service-nodeports', 'firewall-ips']));
    expect(nft.some((c) => c.chain?.startsWith('service-') && c.rule?.includes('numgen random mod'))).toBe(true);
    expect(nft.some((c) => c.set?.startsWith('affinity-'))).toBe(true);
    // Nothing asked, hinted or explained in nftables mode names iptables chains (comparisons name "iptables mode").
    for (const s of SCENARIOS) {
      for (const st of asked(s, { 'kubeProxy.mode': 'nftables' }).steps) {
        const text = [st.question, st.explain, st.debrief, ...st.hints, ...st.feedback.map((f) => f.say)].join(' ');
        expect(text, `${s}/${st.id}`).not.toMatch(/KUBE-(?!FIREWALL chain exists)|iptables-save|--probability/);
      }
    }
  });

  it('nodeport asks about each pod network: vxlan neighbour, FDB and outer header, bgp proto bird, host-gw next hop', () => {
    const route = (podNetwork: string) => {
      const w = asked('nodeport', { 'podNetwork.mode': podNetwork });
      return { ids: w.steps.map((s) => s.id), step: (id: string) => w.steps.find((s) => s.id === id)! };
    };
    const routed = route('routed');
    expect(routed.step('route-out').check.route).toEqual({ node: 'node1', to: '10.244.1.2', field: 'dev' });
    expect(routed.ids).not.toContain('vxlan-fdb');

    const vxlan = route('vxlan');
    expect(vxlan.ids).toEqual(expect.arrayContaining(['vxlan-neighbour', 'vxlan-fdb']));
    expect(vxlan.step('vxlan-neighbour').check.neighbour).toMatchObject({ node: 'node1', dev: 'flannel.1', to: '10.244.1.0' });
    expect(vxlan.step('vxlan-fdb').check.fdb).toMatchObject({ dev: 'flannel.1', mac: '0e:fa:0a:f0:00:05', field: 'dst' });
    expect(vxlan.step('arrives-node2').check.capture).toMatchObject({ at: 'node2:eth0', outer: true, field: 'dst' });
    expect(vxlan.step('route-out').explain).toContain('flannel.1');
    expect(vxlan.step('snat-cross-node').debrief).toContain('10.244.0.0');

    const bgp = route('bgp');
    expect(bgp.step('route-out').check.route).toEqual({ node: 'router', to: '10.244.1.2', field: 'proto' });
    expect(bgp.step('bgp-next-hop').check.route).toMatchObject({ node: 'router', field: 'via' });
    expect(bgp.ids).not.toContain('vxlan-neighbour');

    const hostGw = route('host-gw');
    expect(hostGw.step('route-out').check.route).toMatchObject({ node: 'node1', field: 'via' });
    expect(answerKind(hostGw.step('route-out'))).toBe('address');
    // The iptables question's feedback about cbr0 does not follow the new question.
    expect(hostGw.step('route-out').feedback.map((f) => f.answer)).toEqual(['10.240.0.1']);
  });

  it('a variant with a check asks a new question: the base kind, port, hints and feedback are dropped; text-only variants keep them', () => {
    const base: WorkshopStep = {
      id: 's',
      title: 'T',
      explain: 'E',
      look: [],
      question: 'Q',
      check: { rule: { node: 'node1', table: 'nat', chain: 'KUBE-SVC-*', nth: 1, field: '--probability' } },
      kind: 'number',
      port: 'required',
      hints: ['h1'],
      feedback: [{ answer: 'a', say: 'b' }],
      nftables: { question: 'NQ', check: { nft: { node: 'node1', map: 'service-ips', key: 'k', nth: 1, field: 'verdict' } } },
      podNetwork: { vxlan: { explain: 'VX' } },
    };
    const nft = stepInModes(base, { proxy: 'nftables', podNetwork: 'vxlan' });
    expect(nft).toMatchObject({ question: 'NQ', explain: 'VX', port: 'optional', hints: [], feedback: [] });
    expect(nft.kind).toBeUndefined();
    expect(answerKind(nft)).toBe('name');
    expect('nftables' in nft || 'podNetwork' in nft).toBe(false);
    const ipt = stepInModes(base, { proxy: 'iptables', podNetwork: 'vxlan' });
    expect(ipt).toMatchObject({ question: 'Q', explain: 'VX', kind: 'number', hints: ['h1'] });
    const w = workshopInModes({ title: 'W', seed: '', intro: '', outro: '', steps: [base, { ...base, id: 'only-bgp', podNetworks: ['bgp'] }, { ...base, id: 'only-ipt', proxyModes: ['iptables'] }] }, { proxy: 'nftables', podNetwork: 'bgp' });
    expect(w.steps.map((s) => s.id)).toEqual(['s', 'only-bgp']);
  });

  it('every mode of every workshop loads (the file is checked in all of them)', () => {
    expect(podNetworksOf('nodeport')).toEqual([...POD_NETWORK_MODES]);
    expect(podNetworksOf('dualstack')).toContain('routed');
    for (const scenario of SCENARIOS) {
      for (const proxy of PROXY_MODES) {
        for (const podNetwork of podNetworksOf(scenario)) expect(asked(scenario, { 'kubeProxy.mode': proxy, 'podNetwork.mode': podNetwork }).steps.length).toBeGreaterThan(3);
      }
    }
  });
});

const nodeport = loadTopology('nodeport');
const problems = (text: string): InputProblem[] => problemsOf(() => parseWorkshop(YamlFile.parse(text, 'w.yaml'), nodeport.topology, '/x/w.yaml', 'nodeport'));

describe('workshop files with mode variants', () => {
  const step = (variant: string) => `title: T
steps:
  - id: one
    title: A step
    explain: What happens.
    question: What is it?
    check: { value: yes }
${variant}`;

  it('a variant check is checked in its mode, at its own line', () => {
    const got = problems(step(`    nftables:
      check:
        nft: { node: node9, map: service-ips, key: "tcp . 1", field: verdict }`));
    expect(got.map((p) => [p.field, p.line, p.message])).toEqual([['steps[0].nftables.check.nft.node', 10, '"node9" is not a node of this topology']]);
    const vx = problems(step(`    podNetwork:
      vxlan:
        check: { fdb: { node: nowhere, dev: flannel.1, mac: "0e:fa:0a:f0:00:05", field: dst } }`));
    expect(vx.map((p) => [p.field, p.message])).toEqual([['steps[0].podNetwork.vxlan.check.fdb.node', 'no host named "nowhere"']]);
  });

  it('an nft check names one map, set or chain, with a field it has', () => {
    const msg = (check: string) => problems(step(`    nftables:\n      check: { nft: ${check} }`)).map((p) => p.message);
    expect(msg('{ node: node1, map: a, chain: b, field: count }')).toEqual(['must name exactly one of map, set, chain (has map, chain)']);
    expect(msg('{ node: node1, chain: "service-*", field: match }')).toEqual(['field match needs rule, a regular expression with a group']);
    expect(msg('{ node: node1, chain: "service-*", rule: "numgen", field: match }')[0]).toMatch(/first group/);
    expect(msg('{ node: node1, chain: "service-*", rule: "(", field: match }')[0]).toMatch(/not a regular expression/);
    expect(msg('{ node: node1, map: service-ips, field: verdict }')).toEqual(['field verdict needs the key of the element, e.g. "tcp . 32000"']);
    expect(msg('{ node: node1, set: nodeport-ips, field: verdict }')[0]).toMatch(/a set has no field "verdict"/);
    expect(msg('{ node: node1, chain: x, rule: "mod (\\\\d+)", field: match }')).toEqual([]);
  });

  it('a workshop that asks nothing in some mode is refused', () => {
    const got = problems(step('    proxyModes: [iptables]'));
    expect(got[0]?.message).toMatch(/no step is asked in kube-proxy mode nftables/);
  });
});

/** kube-proxy's nftables listing, abridged from a live nodeport lab with sessionAffinity. */
const NFT_TEXT = `table ip kube-proxy {
	comment "rules for kube-proxy"
	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}
	chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
		ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
	}
	chain service-PET3V2EF-default/web/tcp/https {
		ip daddr 172.31.0.5 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
		ip saddr @affinity-35L7OA2E-default/web/tcp/https__10.244.0.3/8443 goto endpoint-35L7OA2E-default/web/tcp/https__10.244.0.3/8443
		numgen random mod 2 vmap { 0 : goto endpoint-35L7OA2E-default/web/tcp/https__10.244.0.3/8443, 1 : goto endpoint-CB5NNYOC-default/web/tcp/https__10.244.1.2/8443 }
	}
	chain external-PET3V2EF-default/web/tcp/https {
		jump mark-for-masquerade
		goto service-PET3V2EF-default/web/tcp/https
	}
}`;
const NFT_OBJECTS = [
  { map: { name: 'service-ips', elem: [[{ concat: ['172.31.0.5', 'tcp', 443] }, { goto: { target: 'service-PET3V2EF-default/web/tcp/https' } }]] } },
  { map: { name: 'service-nodeports', elem: [[{ concat: ['tcp', 32000] }, { goto: { target: 'external-PET3V2EF-default/web/tcp/https' } }]] } },
  { set: { name: 'nodeport-ips', elem: ['10.240.0.4'] } },
  { set: { name: 'affinity-35L7OA2E-default/web/tcp/https__10.244.0.3/8443', timeout: 10800, elem: [] } },
];

describe('reading an nft check from a node table', () => {
  const table = nftTableOf(NFT_TEXT, NFT_OBJECTS);
  const read = (c: Omit<NonNullable<Check['nft']>, 'node' | 'nth'> & { nth?: number }) => nftValue({ node: 'node1', nth: 1, ...c }, 'node1', table);

  it('lists chains with their rules, hooks and comments left out', () => {
    const chains = nftChainsOf(NFT_TEXT);
    expect([...chains.keys()]).toEqual(['nat-prerouting', 'services', 'service-PET3V2EF-default/web/tcp/https', 'external-PET3V2EF-default/web/tcp/https']);
    expect(chains.get('nat-prerouting')).toEqual(['jump services']);
  });

  it('map elements, by key, as their target chain', () => {
    expect(read({ map: 'service-nodeports', key: 'tcp . 32000', field: 'verdict' })).toMatchObject({ values: ['external-PET3V2EF-default/web/tcp/https'] });
    expect(read({ map: 'service-ips', key: '172.31.0.5  .  tcp . 443', field: 'verdict' })).toMatchObject({ values: ['service-PET3V2EF-default/web/tcp/https'] });
    expect(read({ map: 'service-*', field: 'count' })).toMatchObject({ values: ['2'] });
    expect(read({ map: 'service-ips', key: '10.9.9.9 . tcp . 1', field: 'verdict' })).toMatchObject({ unavailable: expect.stringMatching(/damaged/) });
  });

  it('rules of a chain by a regular expression: a group, the chain, a count', () => {
    expect(read({ chain: 'service-*', rule: 'numgen random mod (\\d+)', field: 'match' })).toMatchObject({ values: ['2'] });
    expect(read({ chain: 'service-*', rule: 'ip saddr != (\\S+) jump', field: 'match' })).toMatchObject({ values: ['10.244.0.0/16'] });
    expect(read({ chain: 'external-*', rule: '^goto (\\S+)', field: 'match' })).toMatchObject({ values: ['service-PET3V2EF-default/web/tcp/https'] });
    expect(read({ chain: 'service-*', rule: '^ip saddr @affinity-', field: 'count' })).toMatchObject({ values: ['1'] });
    expect(read({ chain: '*', rule: 'numgen', field: 'chain' })).toMatchObject({ values: ['service-PET3V2EF-default/web/tcp/https'] });
    expect(read({ chain: 'local-*', rule: 'numgen random mod (\\d+)', field: 'match' })).toMatchObject({ unavailable: expect.stringMatching(/no rule matching/) });
  });

  it('sets: elements, timeout; an empty set cannot be read yet', () => {
    expect(read({ set: 'nodeport-ips', field: 'elements' })).toMatchObject({ values: ['10.240.0.4'] });
    expect(read({ set: 'affinity-*', field: 'timeout' })).toMatchObject({ values: ['10800'] });
    expect(read({ set: 'affinity-*', field: 'elements' })).toMatchObject({ unavailable: expect.stringMatching(/holds no element yet/) });
  });
});

describe("--check's pod network, in each mode", () => {
  const expectations = (mode: string) => podNetworkExpectations(loadTopology('nodeport', { 'podNetwork.mode': mode }).topology);

  it('looks for what the mode plans between the nodes', () => {
    expect(expectations('routed')).toEqual([
      { kind: 'router-route', from: 'node1', to: 'node2', cidr: '10.244.1.0/24', via: '10.240.0.5' },
      { kind: 'router-route', from: 'node2', to: 'node1', cidr: '10.244.0.0/24', via: '10.240.0.4' },
    ]);
    expect(expectations('bgp').every((e) => e.kind === 'router-route' && e.proto === 'bird')).toBe(true);
    expect(expectations('host-gw')).toEqual([
      { kind: 'node-route', node: 'node1', to: 'node2', cidr: '10.244.1.0/24', via: '10.240.0.5' },
      { kind: 'node-route', node: 'node2', to: 'node1', cidr: '10.244.0.0/24', via: '10.240.0.4' },
    ]);
    expect(expectations('vxlan')).toEqual([
      { kind: 'vtep', node: 'node1', to: 'node2', device: 'flannel.1', address: '10.244.1.0', mac: '0e:fa:0a:f0:00:05', underlay: '10.240.0.5' },
      { kind: 'vtep', node: 'node2', to: 'node1', device: 'flannel.1', address: '10.244.0.0', mac: '0e:fa:0a:f0:00:04', underlay: '10.240.0.4' },
    ]);
    expect(firstHost('10.244.1.0/24')).toBe('10.244.1.1');
  });
});
