import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeEach, describe, expect, it } from 'vitest';
import { servicePorts } from '../../lab/plan/endpoints.js';
import {
  base32,
  endpointChain,
  endpointHash,
  externalChain,
  firewallChain,
  portProtoHash,
  serviceChain,
  serviceLocalChain,
} from '../../lab/plan/kube-proxy/hash.js';
import { AFFINITY_SECONDS, initialRestore, kubeProxyRules, MASQ_MARK, probability, resyncRestore, type NodeRuleset } from '../../lab/plan/kube-proxy/iptables.js';
import { parseRuleLine, parseSave, renderRestore, renderRule, splitArgs, type ParsedRule, type Rule } from '../../lab/plan/kube-proxy/rules.js';
import { planLab } from '../../lab/plan/plan.js';
import { loadTopology } from '../../lab/topology/load.js';
import { podSchema, type Topology } from '../../lab/topology/schema.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

// Computed independently (Python: base64.b32encode(hashlib.sha256(text).digest())[:16]).
const WEB = '54WW65JLHZHRV7HC'; // default/web:https + tcp
const SVC = `KUBE-SVC-${WEB}`;
const SVL = `KUBE-SVL-${WEB}`;
const EXT = `KUBE-EXT-${WEB}`;
const SEP_WEB1 = 'KUBE-SEP-OU66A2EEGSXLULNT'; // + 10.244.0.3:8443
const SEP_WEB2 = 'KUBE-SEP-H6OLLUBTYNZRC5BX'; // + 10.244.1.2:8443
const SPN = 'default/web:https';

const base = loadTopology('nodeport').topology;
/** A fresh, mutable copy of the nodeport topology for each variant. */
const nodeport = (): Topology => structuredClone(base);
/** A pod as the schema fills it in (labels app=web unless given). */
const addPod = (t: Topology, pod: { name: string; node: string; address: string; ready?: boolean; labels?: Record<string, string> }) =>
  t.pods.push(podSchema.parse({ labels: { app: 'web' }, ...pod }));

// ---------------------------------------------------------------------------------------------
// Parsed view of a rendered payload: every test reads rules back through the module's own parser.

interface Parsed {
  payload: string;
  chains: Map<string, string[]>;
  rules: ParsedRule[];
}

function parsed(ruleset: NodeRuleset): Parsed {
  const payload = initialRestore(ruleset);
  const { chains, rules } = parseSave(payload);
  return { payload, chains, rules };
}
const rulesOf = (t: Topology, node: string) => parsed(kubeProxyRules(t, node));
const chain = (p: Parsed, table: string, name: string) => p.rules.filter((r) => r.table === table && r.chain === name);
const nat = (p: Parsed, name: string) => chain(p, 'nat', name);
const filter = (p: Parsed, name: string) => chain(p, 'filter', name);
const opt = (r: ParsedRule | undefined, name: string) => r?.options.get(name);
const target = (r: ParsedRule | undefined) => opt(r, '-j');
const comment = (r: ParsedRule | undefined) => opt(r, '--comment');

/** Every user chain a rule jumps to is declared in that table, and every declared KUBE- chain is used or built in. */
function expectConsistentJumps(p: Parsed): void {
  const builtinTargets = new Set(['ACCEPT', 'DROP', 'RETURN', 'REJECT', 'DNAT', 'MARK', 'MASQUERADE']);
  for (const r of p.rules) {
    const j = target(r)!;
    if (builtinTargets.has(j)) continue;
    expect(p.chains.get(r.table), `${r.table} ${r.chain} jumps to undeclared ${j}`).toContain(j);
  }
}

// ---------------------------------------------------------------------------------------------

describe('chain-name hashes', () => {
  it('match the check values kube-proxy itself is tested with', () => {
    expect(portProtoHash('ns1/svc1:p80', 'tcp')).toBe('XPGD46QRK7WJZT7O');
    expect(endpointHash('ns1/svc1:p80', 'tcp', '10.180.0.1:80')).toBe('SXIVWICOYRO3J4NJ');
    expect(portProtoHash('ns4/svc4:p80', 'tcp')).toBe('4SW47YFZTEDKD3PK');
    expect(endpointHash('ns4/svc4:p80', 'tcp', '10.180.0.4:80')).toBe('UKSFD7AGPMPPLUHC');
    expect(endpointHash('ns4/svc4:p80', 'tcp', '10.180.0.5:80')).toBe('C6EBXVWJJZMIWKLZ');
  });

  it('lower-cases the protocol (kube-proxy hashes "tcp", not "TCP")', () => {
    expect(portProtoHash('ns1/svc1:p80', 'TCP')).toBe('XPGD46QRK7WJZT7O');
  });

  it('gives the nodeport service its chain names', () => {
    expect(serviceChain(SPN, 'tcp')).toBe(SVC);
    expect(serviceLocalChain(SPN, 'tcp')).toBe(SVL);
    expect(externalChain(SPN, 'tcp')).toBe(EXT);
    expect(firewallChain(SPN, 'tcp')).toBe(`KUBE-FW-${WEB}`);
    expect(endpointChain(SPN, 'tcp', '10.244.0.3:8443')).toBe(SEP_WEB1);
    expect(endpointChain(SPN, 'tcp', '10.244.1.2:8443')).toBe(SEP_WEB2);
    expect(portProtoHash('default/web', 'tcp')).toBe('LOLE4ISW44XBNF3G');
  });

  it('is 16 characters of the base32 alphabet', () => {
    for (const h of [portProtoHash('a/b:c', 'tcp'), endpointHash('a/b', 'tcp', '1.2.3.4:5')]) expect(h).toMatch(/^[A-Z2-7]{16}$/);
  });
});

describe('base32', () => {
  const enc = (s: string) => base32(new TextEncoder().encode(s));
  it.each([
    ['', ''],
    ['f', 'MY======'],
    ['fo', 'MZXQ===='],
    ['foo', 'MZXW6==='],
    ['foob', 'MZXW6YQ='],
    ['fooba', 'MZXW6YTB'],
    ['foobar', 'MZXW6YTBOI======'],
  ])('RFC 4648 §10: %j → %j', (input, output) => {
    expect(enc(input)).toBe(output);
  });

  it('encodes all-ones and all-zero bytes', () => {
    expect(base32(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff]))).toBe('77777777');
    expect(base32(new Uint8Array([0, 0, 0, 0, 0]))).toBe('AAAAAAAA');
    expect(base32(new Uint8Array(32).fill(0xff))).toBe(`${'7'.repeat(51)}Q====`);
  });

  it('agrees with an independent bit-by-bit encoder on a sha256-sized input', () => {
    const bytes = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 255);
    const bits = [...bytes].map((b) => b.toString(2).padStart(8, '0')).join('');
    const padded = bits.padEnd(Math.ceil(bits.length / 5) * 5, '0');
    let ref = '';
    for (let i = 0; i < padded.length; i += 5) ref += 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[parseInt(padded.slice(i, i + 5), 2)];
    expect(base32(bytes)).toBe(ref.padEnd(56, '='));
  });
});

describe('probability', () => {
  it('prints 1/(n-i) with ten decimals', () => {
    expect(probability(0, 2)).toBe('0.5000000000');
    expect(probability(0, 3)).toBe('0.3333333333');
    expect(probability(1, 3)).toBe('0.5000000000');
    expect(probability(0, 4)).toBe('0.2500000000');
    expect(probability(0, 6)).toBe('0.1666666667');
    expect(probability(2, 3)).toBe('1.0000000000');
  });
});

describe('nodeport, node1: the rendered restore payload', () => {
  const p = rulesOf(base, 'node1');

  it('has a mangle (canary chains), a filter and a nat section, each committed', () => {
    expect(p.payload.match(/^\*\w+$/gm)).toEqual(['*mangle', '*filter', '*nat']);
    expect(p.payload.match(/^COMMIT$/gm)).toHaveLength(3);
    expect(p.payload.endsWith('COMMIT\n')).toBe(true);
  });

  it('declares exactly the service chains kube-proxy would', () => {
    expect(p.chains.get('nat')).toEqual(['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ', EXT, SVC, SEP_WEB1, SEP_WEB2, 'KUBE-KUBELET-CANARY', 'KUBE-PROXY-CANARY']);
    expect(p.chains.get('filter')).toEqual(['KUBE-NODEPORTS', 'KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FIREWALL', 'KUBE-FORWARD', 'KUBE-PROXY-FIREWALL', 'KUBE-KUBELET-CANARY', 'KUBE-PROXY-CANARY']);
    expect(p.chains.get('mangle')).toEqual(['KUBE-IPTABLES-HINT', 'KUBE-KUBELET-CANARY', 'KUBE-PROXY-CANARY']);
    expectConsistentJumps(p);
  });

  it('jumps from the built-in nat chains', () => {
    const jumps = ['PREROUTING', 'OUTPUT', 'POSTROUTING'].map((c) => nat(p, c).map((r) => [comment(r), target(r)]));
    expect(jumps).toEqual([
      [['kubernetes service portals', 'KUBE-SERVICES']],
      [['kubernetes service portals', 'KUBE-SERVICES']],
      [['kubernetes postrouting rules', 'KUBE-POSTROUTING']],
    ]);
  });

  it('KUBE-SERVICES: the cluster IP rule, and the NodePort jump last', () => {
    const rules = nat(p, 'KUBE-SERVICES');
    expect(rules).toHaveLength(2);
    const [clusterIP, last] = rules;
    expect(comment(clusterIP)).toBe('default/web:https cluster IP');
    expect(opt(clusterIP, '-d')).toBe('172.31.0.5');
    expect(opt(clusterIP, '-p')).toBe('tcp');
    expect(opt(clusterIP, '--dport')).toBe('443');
    expect(target(clusterIP)).toBe(SVC);
    expect(clusterIP!.modules).toEqual(['comment', 'tcp']);
    expect(clusterIP!.negated.size).toBe(0);

    expect(last!.modules).toEqual(['comment', 'addrtype']);
    expect(opt(last, '--dst-type')).toBe('LOCAL');
    expect(target(last)).toBe('KUBE-NODEPORTS');
    expect(comment(last)).toBe('kubernetes service nodeports; NOTE: this must be the last rule in this chain');
  });

  it('KUBE-NODEPORTS: the nodePort goes to KUBE-EXT', () => {
    const rules = nat(p, 'KUBE-NODEPORTS');
    expect(rules).toHaveLength(1);
    expect(comment(rules[0])).toBe(SPN);
    expect(opt(rules[0], '-p')).toBe('tcp');
    expect(opt(rules[0], '--dport')).toBe('32000');
    expect(rules[0]!.options.has('-d')).toBe(false);
    expect(target(rules[0])).toBe(EXT);
  });

  it('KUBE-EXT (externalTrafficPolicy Cluster): masquerade, then the service chain', () => {
    const rules = nat(p, EXT);
    expect(rules.map((r) => [comment(r), target(r)])).toEqual([
      ['masquerade traffic for default/web:https external destinations', 'KUBE-MARK-MASQ'],
      [undefined, SVC],
    ]);
  });

  it('KUBE-SVC: masquerade off-cluster sources, then endpoints by "ip:port" with a 0.5 then no statistic', () => {
    const rules = nat(p, SVC);
    expect(rules).toHaveLength(3);
    const [masq, first, last] = rules;
    expect(opt(masq, '-s')).toBe('10.244.0.0/16');
    expect([...masq!.negated]).toEqual(['-s']);
    expect(opt(masq, '-d')).toBe('172.31.0.5');
    expect(opt(masq, '--dport')).toBe('443');
    expect(comment(masq)).toBe('default/web:https cluster IP');
    expect(target(masq)).toBe('KUBE-MARK-MASQ');

    expect(comment(first)).toBe('default/web:https -> 10.244.0.3:8443');
    expect(first!.modules).toEqual(['comment', 'statistic']);
    expect(opt(first, '--mode')).toBe('random');
    expect(opt(first, '--probability')).toBe('0.5000000000');
    expect(target(first)).toBe(SEP_WEB1);

    expect(comment(last)).toBe('default/web:https -> 10.244.1.2:8443');
    expect(last!.modules).toEqual(['comment']);
    expect(last!.options.has('--probability')).toBe(false);
    expect(target(last)).toBe(SEP_WEB2);
  });

  it('KUBE-SEP: hairpin masquerade, then DNAT to the pod and targetPort', () => {
    for (const [sep, ip] of [[SEP_WEB1, '10.244.0.3'], [SEP_WEB2, '10.244.1.2']] as const) {
      const [hairpin, dnat, ...rest] = nat(p, sep);
      expect(rest).toEqual([]);
      expect(opt(hairpin, '-s')).toBe(ip);
      expect(hairpin!.negated.size).toBe(0);
      expect(target(hairpin)).toBe('KUBE-MARK-MASQ');
      expect(comment(hairpin)).toBe(SPN);
      expect(opt(dnat, '-p')).toBe('tcp');
      expect(target(dnat)).toBe('DNAT');
      expect(opt(dnat, '--to-destination')).toBe(`${ip}:8443`);
      expect(dnat!.options.has('-s')).toBe(false);
    }
  });

  it('KUBE-MARK-MASQ and KUBE-POSTROUTING', () => {
    const mark = nat(p, 'KUBE-MARK-MASQ');
    expect(mark).toHaveLength(1);
    expect(target(mark[0])).toBe('MARK');
    expect(opt(mark[0], '--or-mark')).toBe('0x4000');
    expect(MASQ_MARK).toBe('0x4000');

    const post = nat(p, 'KUBE-POSTROUTING');
    expect(post).toHaveLength(3);
    expect(post[0]!.modules).toEqual(['mark']);
    expect(opt(post[0], '--mark')).toBe('0x4000/0x4000');
    expect([...post[0]!.negated]).toEqual(['--mark']);
    expect(target(post[0])).toBe('RETURN');
    expect(target(post[1])).toBe('MARK');
    expect(opt(post[1], '--xor-mark')).toBe('0x4000');
    expect(comment(post[2])).toBe('kubernetes service traffic requiring SNAT');
    expect(target(post[2])).toBe('MASQUERADE');
    expect(post[2]!.options.has('--random-fully')).toBe(true);
  });

  it('filter: no REJECT or DROP for a service with endpoints', () => {
    expect(filter(p, 'KUBE-SERVICES')).toEqual([]);
    expect(filter(p, 'KUBE-EXTERNAL-SERVICES')).toEqual([]);
    expect(filter(p, 'KUBE-FORWARD').map((r) => target(r))).toEqual(['DROP', 'ACCEPT', 'ACCEPT']);
    expect(opt(filter(p, 'KUBE-FORWARD')[0], '--ctstate')).toBe('INVALID');
  });

  it('with externalTrafficPolicy Cluster every node gets the same nat rules', () => {
    const node2 = rulesOf(base, 'node2');
    const view = (q: Parsed) => q.rules.map((r) => `${r.table} ${r.text}`);
    expect(view(node2)).toEqual(view(p));
  });

  it('planLab carries this payload for each node namespace', () => {
    const plan = planLab(base);
    expect(plan.kubeProxy.map((r) => [r.ns, r.node])).toEqual([
      ['nodeport-node1', 'node1'],
      ['nodeport-node2', 'node2'],
    ]);
    expect(plan.kubeProxy[0]!.payload).toBe(p.payload);
  });
});

describe('variants', () => {
  let t: Topology;
  beforeEach(() => {
    t = nodeport();
  });
  const web = () => t.services[0]!;

  it('three endpoints: 1/3, 1/2, then no statistic', () => {
    addPod(t, { name: 'web-3', node: 'node1', address: '10.244.0.4' });
    const rules = nat(rulesOf(t, 'node1'), SVC).slice(1);
    expect(rules.map((r) => [comment(r), opt(r, '--probability'), target(r)])).toEqual([
      ['default/web:https -> 10.244.0.3:8443', '0.3333333333', SEP_WEB1],
      ['default/web:https -> 10.244.0.4:8443', '0.5000000000', endpointChain(SPN, 'tcp', '10.244.0.4:8443')],
      ['default/web:https -> 10.244.1.2:8443', undefined, SEP_WEB2],
    ]);
    expect(rules[2]!.modules).not.toContain('statistic');
  });

  it('endpoints are sorted as strings, as kube-proxy sorts them (10.244.0.10 before 10.244.0.3)', () => {
    addPod(t, { name: 'web-10', node: 'node1', address: '10.244.0.10' });
    const order = nat(rulesOf(t, 'node1'), SVC)
      .slice(1)
      .map((r) => comment(r)!.split(' -> ')[1]);
    expect(order).toEqual(['10.244.0.10:8443', '10.244.0.3:8443', '10.244.1.2:8443']);
    expect(servicePorts(t)[0]!.endpoints.map((e) => e.pod)).toEqual(['web-10', 'web-1', 'web-2']);
  });

  it('a pod that is not ready, or not selected, is no endpoint', () => {
    addPod(t, { name: 'web-3', node: 'node1', address: '10.244.0.4', ready: false });
    addPod(t, { name: 'db-1', node: 'node1', address: '10.244.0.5', labels: { app: 'db' } });
    const p = rulesOf(t, 'node1');
    expect(nat(p, SVC).slice(1).map((r) => target(r))).toEqual([SEP_WEB1, SEP_WEB2]);
  });

  describe('externalTrafficPolicy Local', () => {
    beforeEach(() => {
      web().externalTrafficPolicy = 'Local';
    });

    it('KUBE-EXT keeps pod and LOCAL traffic on KUBE-SVC and sends the rest to KUBE-SVL', () => {
      const p = rulesOf(t, 'node1');
      const ext = nat(p, EXT);
      expect(ext.map((r) => [comment(r), target(r)])).toEqual([
        ['pod traffic for default/web:https external destinations', SVC],
        ['masquerade LOCAL traffic for default/web:https external destinations', 'KUBE-MARK-MASQ'],
        ['route LOCAL traffic for default/web:https external destinations', SVC],
        [undefined, SVL],
      ]);
      expect(opt(ext[0], '-s')).toBe('10.244.0.0/16');
      expect(ext[0]!.negated.size).toBe(0);
      expect(opt(ext[1], '--src-type')).toBe('LOCAL');
      expect(opt(ext[2], '--src-type')).toBe('LOCAL');
      // no blanket masquerade: the client address reaches the pod
      expect(ext.filter((r) => target(r) === 'KUBE-MARK-MASQ' && !r.options.has('--src-type'))).toEqual([]);
      expectConsistentJumps(p);
    });

    it('KUBE-SVL lists only this node\'s endpoints; KUBE-SVC still lists all', () => {
      const one = rulesOf(t, 'node1');
      expect(nat(one, SVL).map((r) => [comment(r), opt(r, '--probability'), target(r)])).toEqual([
        ['default/web:https -> 10.244.0.3:8443', undefined, SEP_WEB1],
      ]);
      expect(nat(one, SVC).slice(1).map((r) => target(r))).toEqual([SEP_WEB1, SEP_WEB2]);
      const two = rulesOf(t, 'node2');
      expect(nat(two, SVL).map((r) => target(r))).toEqual([SEP_WEB2]);
      // internal traffic is still Cluster: the ClusterIP goes to KUBE-SVC
      expect(target(nat(one, 'KUBE-SERVICES')[0])).toBe(SVC);
      expect(filter(one, 'KUBE-EXTERNAL-SERVICES')).toEqual([]);
    });

    it('a node without a local endpoint drops the nodePort in filter and has no jump to KUBE-SVL', () => {
      t.pods.find((pod) => pod.name === 'web-1')!.ready = false;
      const p = rulesOf(t, 'node1');
      const ext = nat(p, EXT);
      expect(ext.map((r) => comment(r))).toEqual([
        'pod traffic for default/web:https external destinations',
        'masquerade LOCAL traffic for default/web:https external destinations',
        'route LOCAL traffic for default/web:https external destinations',
      ]);
      expect(ext.map((r) => target(r))).not.toContain(SVL);
      const drops = filter(p, 'KUBE-EXTERNAL-SERVICES');
      expect(drops).toHaveLength(1);
      expect(comment(drops[0])).toBe('default/web:https has no local endpoints');
      expect(opt(drops[0], '--dst-type')).toBe('LOCAL');
      expect(opt(drops[0], '-p')).toBe('tcp');
      expect(opt(drops[0], '--dport')).toBe('32000');
      expect(target(drops[0])).toBe('DROP');
      // The nodePort is still captured: traffic from pods and the node itself is short-circuited to KUBE-SVC.
      expect(target(nat(p, 'KUBE-NODEPORTS')[0])).toBe(EXT);
      expect(nat(p, SVC).slice(1).map((r) => target(r))).toEqual([SEP_WEB2]);
      // node2 still has its endpoint and no drop
      expect(filter(rulesOf(t, 'node2'), 'KUBE-EXTERNAL-SERVICES')).toEqual([]);
    });
  });

  describe('internalTrafficPolicy Local', () => {
    beforeEach(() => {
      web().internalTrafficPolicy = 'Local';
    });

    it('the ClusterIP goes to KUBE-SVL, which holds the masquerade rule and the local endpoints', () => {
      const p = rulesOf(t, 'node1');
      const clusterIP = nat(p, 'KUBE-SERVICES')[0];
      expect(comment(clusterIP)).toBe('default/web:https cluster IP');
      expect(target(clusterIP)).toBe(SVL);
      const svl = nat(p, SVL);
      expect(svl).toHaveLength(2);
      expect(opt(svl[0], '-s')).toBe('10.244.0.0/16');
      expect(svl[0]!.negated.has('-s')).toBe(true);
      expect(target(svl[0])).toBe('KUBE-MARK-MASQ');
      expect([comment(svl[1]), target(svl[1]), opt(svl[1], '--probability')]).toEqual(['default/web:https -> 10.244.0.3:8443', SEP_WEB1, undefined]);
      expectConsistentJumps(p);
    });

    it('NodePort traffic (externalTrafficPolicy Cluster) still uses KUBE-SVC with every endpoint, without the ClusterIP masquerade', () => {
      const p = rulesOf(t, 'node2');
      expect(nat(p, EXT).map((r) => target(r))).toEqual(['KUBE-MARK-MASQ', SVC]);
      expect(nat(p, SVC).map((r) => target(r))).toEqual([SEP_WEB1, SEP_WEB2]);
      expect(opt(nat(p, SVC)[0], '--probability')).toBe('0.5000000000');
      expect(nat(p, SVL).map((r) => target(r))).toEqual(['KUBE-MARK-MASQ', SEP_WEB2]);
    });

    it('a ClusterIP service needs no KUBE-SVC or KUBE-EXT chain at all', () => {
      web().type = 'ClusterIP';
      delete web().ports[0]!.nodePort;
      const p = rulesOf(t, 'node1');
      const declared = p.chains.get('nat')!;
      expect(declared).toContain(SVL);
      expect(declared).not.toContain(SVC);
      expect(declared).not.toContain(EXT);
      expect(nat(p, 'KUBE-NODEPORTS')).toEqual([]);
      expect(nat(p, 'KUBE-SERVICES').map((r) => target(r))).toEqual([SVL, 'KUBE-NODEPORTS']);
    });

    it('a node with no local endpoint drops the ClusterIP in filter instead of jumping', () => {
      t.pods.find((pod) => pod.name === 'web-1')!.ready = false;
      const p = rulesOf(t, 'node1');
      expect(nat(p, 'KUBE-SERVICES').map((r) => target(r))).toEqual(['KUBE-NODEPORTS']);
      const drop = filter(p, 'KUBE-SERVICES');
      expect(drop.map((r) => [comment(r), opt(r, '-d'), opt(r, '--dport'), target(r)])).toEqual([
        ['default/web:https has no local endpoints', '172.31.0.5', '443', 'DROP'],
      ]);
    });
  });

  it('sessionAffinity ClientIP: recent checks before the statistic rules, and a recent --set on DNAT', () => {
    web().sessionAffinity = 'ClientIP';
    const p = rulesOf(t, 'node1');
    const svc = nat(p, SVC);
    expect(svc).toHaveLength(5);
    const [masq, r1, r2, s1, s2] = svc;
    expect(target(masq)).toBe('KUBE-MARK-MASQ');
    for (const [r, sep, ep] of [[r1, SEP_WEB1, '10.244.0.3:8443'], [r2, SEP_WEB2, '10.244.1.2:8443']] as const) {
      expect(comment(r)).toBe(`default/web:https -> ${ep}`);
      expect(r!.modules).toEqual(['comment', 'recent']);
      expect(opt(r, '--name')).toBe(sep);
      expect(r!.options.has('--rcheck')).toBe(true);
      expect(opt(r, '--seconds')).toBe('10800');
      expect(r!.options.has('--reap')).toBe(true);
      expect(target(r)).toBe(sep);
    }
    expect(AFFINITY_SECONDS).toBe(10800);
    expect([opt(s1, '--probability'), target(s1)]).toEqual(['0.5000000000', SEP_WEB1]);
    expect([opt(s2, '--probability'), target(s2)]).toEqual([undefined, SEP_WEB2]);
    expect(s1!.modules).not.toContain('recent');

    for (const sep of [SEP_WEB1, SEP_WEB2]) {
      const [hairpin, dnat] = nat(p, sep);
      expect(hairpin!.modules).not.toContain('recent');
      expect(dnat!.modules).toEqual(['comment', 'recent', 'tcp']);
      expect(opt(dnat, '--name')).toBe(sep);
      expect(dnat!.options.has('--set')).toBe(true);
      expect(target(dnat)).toBe('DNAT');
    }
  });

  it('LoadBalancer: each ingress IP gets a "loadbalancer IP" rule to KUBE-EXT, before the NodePort jump', () => {
    web().type = 'LoadBalancer';
    web().loadBalancerIPs = ['10.240.0.100', '10.240.0.101'];
    const p = rulesOf(t, 'node1');
    const rules = nat(p, 'KUBE-SERVICES');
    expect(rules.map((r) => [comment(r), opt(r, '-d'), opt(r, '--dport'), target(r)])).toEqual([
      ['default/web:https cluster IP', '172.31.0.5', '443', SVC],
      ['default/web:https loadbalancer IP', '10.240.0.100', '443', EXT],
      ['default/web:https loadbalancer IP', '10.240.0.101', '443', EXT],
      ['kubernetes service nodeports; NOTE: this must be the last rule in this chain', undefined, undefined, 'KUBE-NODEPORTS'],
    ]);
    expect(opt(nat(p, 'KUBE-NODEPORTS')[0], '--dport')).toBe('32000');
    expect(nat(p, EXT).map((r) => target(r))).toEqual(['KUBE-MARK-MASQ', SVC]);
    expectConsistentJumps(p);
  });

  it('no ready endpoints: filter REJECTs, and no nat chains for the service', () => {
    for (const pod of t.pods) pod.ready = false;
    web().type = 'LoadBalancer';
    web().loadBalancerIPs = ['10.240.0.100'];
    const p = rulesOf(t, 'node1');
    expect(p.chains.get('nat')).toEqual(['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ', 'KUBE-KUBELET-CANARY', 'KUBE-PROXY-CANARY']);
    expect(p.rules.filter((r) => r.table === 'nat' && /^KUBE-(SVC|SVL|EXT|SEP)-/.test(target(r)!))).toEqual([]);
    expect(nat(p, 'KUBE-SERVICES').map((r) => target(r))).toEqual(['KUBE-NODEPORTS']);
    expect(nat(p, 'KUBE-NODEPORTS')).toEqual([]);

    const svc = filter(p, 'KUBE-SERVICES');
    expect(svc.map((r) => [comment(r), opt(r, '-d'), opt(r, '--dport'), target(r)])).toEqual([
      ['default/web:https has no endpoints', '172.31.0.5', '443', 'REJECT'],
    ]);
    const ext = filter(p, 'KUBE-EXTERNAL-SERVICES');
    expect(ext.map((r) => [comment(r), opt(r, '-d'), opt(r, '--dst-type'), opt(r, '--dport'), target(r)])).toEqual([
      ['default/web:https has no endpoints', '10.240.0.100', undefined, '443', 'REJECT'],
      ['default/web:https has no endpoints', undefined, 'LOCAL', '32000', 'REJECT'],
    ]);
  });

  it('an unnamed port is hashed and printed without ":"', () => {
    web().ports[0]!.name = '';
    const p = rulesOf(t, 'node1');
    const [clusterIP] = nat(p, 'KUBE-SERVICES');
    expect(comment(clusterIP)).toBe('default/web cluster IP');
    expect(target(clusterIP)).toBe('KUBE-SVC-LOLE4ISW44XBNF3G');
    expect(comment(nat(p, 'KUBE-SVC-LOLE4ISW44XBNF3G')[1])).toBe('default/web -> 10.244.0.3:8443');
  });

  it('several services: each gets its rules, the NodePort jump stays last', () => {
    t.services.push({
      ...structuredClone(web()),
      name: 'api',
      type: 'ClusterIP',
      clusterIP: '172.31.0.6',
      ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }],
    });
    const p = rulesOf(t, 'node1');
    const services = nat(p, 'KUBE-SERVICES');
    expect(services.map((r) => comment(r))).toEqual([
      'default/web:https cluster IP',
      'default/api:http cluster IP',
      'kubernetes service nodeports; NOTE: this must be the last rule in this chain',
    ]);
    expect(target(services[1])).toBe(serviceChain('default/api:http', 'tcp'));
    expect(p.chains.get('nat')).not.toContain(externalChain('default/api:http', 'tcp'));
    expect(nat(p, 'KUBE-NODEPORTS')).toHaveLength(1);
    expect(opt(nat(p, endpointChain('default/api:http', 'tcp', '10.244.0.3:8080'))[1], '--to-destination')).toBe('10.244.0.3:8080');
    expectConsistentJumps(p);
  });
});

describe('restore payloads', () => {
  const rules = kubeProxyRules(base, 'node1');

  it('initialRestore puts the built-in chain jumps first in each table', () => {
    const { rules: parsedRules } = parseSave(initialRestore(rules));
    const natRules = parsedRules.filter((r) => r.table === 'nat');
    expect(natRules.slice(0, 3).map((r) => r.chain)).toEqual(['PREROUTING', 'OUTPUT', 'POSTROUTING']);
    expect(natRules.slice(3).some((r) => ['PREROUTING', 'OUTPUT', 'POSTROUTING'].includes(r.chain))).toBe(false);
    const filterRules = parsedRules.filter((r) => r.table === 'filter');
    expect(filterRules.slice(0, 11).map((r) => r.chain)).toEqual(['INPUT', 'INPUT', 'INPUT', 'INPUT', 'FORWARD', 'FORWARD', 'FORWARD', 'FORWARD', 'OUTPUT', 'OUTPUT', 'OUTPUT']);
  });

  it('resyncRestore re-declares kube-proxy chains (flushing them), without the built-in jumps', () => {
    const text = resyncRestore(rules);
    const { chains, rules: parsedRules } = parseSave(text);
    expect(chains.get('nat')).toEqual(rules.nat.chains);
    expect(parsedRules.some((r) => ['PREROUTING', 'OUTPUT', 'POSTROUTING', 'INPUT', 'FORWARD'].includes(r.chain))).toBe(false);
    expect(parsedRules.filter((r) => r.table === 'nat')).toHaveLength(rules.nat.rules.length);
    expect(text).not.toMatch(/^-X /m);
  });

  it('resyncRestore declares stale chains, then deletes them after the rules, in nat only', () => {
    const stale = ['KUBE-SEP-STALESTALESTALE1', 'KUBE-SVL-STALESTALESTALE2'];
    const text = resyncRestore(rules, stale);
    const lines = text.trimEnd().split('\n');
    const natStart = lines.indexOf('*nat');
    const natEnd = lines.indexOf('COMMIT', natStart);
    const natLines = lines.slice(natStart, natEnd + 1);
    for (const c of stale) {
      const declared = natLines.indexOf(`:${c} - [0:0]`);
      const deleted = natLines.indexOf(`-X ${c}`);
      expect(declared).toBeGreaterThan(0);
      expect(deleted).toBeGreaterThan(declared);
      // after every -A line: a chain is flushed and its referrers rewritten before it goes
      const lastRule = natLines.map((l, i) => (l.startsWith('-A ') ? i : -1)).reduce((a, b) => Math.max(a, b));
      expect(deleted).toBeGreaterThan(lastRule);
      expect(lines.slice(0, natStart).join('\n')).not.toContain(c);
    }
    expect(natLines.filter((l) => l.startsWith('-X '))).toEqual(stale.map((c) => `-X ${c}`));
    expect(natLines.at(-1)).toBe('COMMIT');
  });

  it('renderRestore writes tables in order, with chain declarations before rules', () => {
    const text = renderRestore([
      { name: 'nat', chains: ['KUBE-A'], rules: [{ chain: 'KUBE-A', args: ['-j', 'RETURN'] }] },
      { name: 'filter', chains: [], rules: [] },
    ]);
    expect(text).toBe('*nat\n:KUBE-A - [0:0]\n-A KUBE-A -j RETURN\nCOMMIT\n*filter\nCOMMIT\n');
  });
});

describe('rule text: quoting and splitting', () => {
  it('quotes only words that need it, and splitArgs undoes it', () => {
    const rule: Rule = { chain: 'KUBE-X', args: ['-m', 'comment', '--comment', 'a "quoted" word \\ and; more', '-j', 'RETURN'] };
    const line = renderRule(rule);
    expect(line).toBe('-A KUBE-X -m comment --comment "a \\"quoted\\" word \\\\ and; more" -j RETURN');
    expect(splitArgs(line)).toEqual(['-A', 'KUBE-X', ...rule.args]);
    expect(renderRule({ chain: 'C', args: ['--comment', 'default/web:https'] })).toBe('-A C --comment default/web:https');
  });

  it('splitArgs keeps empty quoted words and collapses repeated spaces', () => {
    expect(splitArgs('a  "b c" "" d')).toEqual(['a', 'b c', '', 'd']);
    expect(splitArgs('')).toEqual([]);
  });

  it('every rendered rule parses back to its own arguments', () => {
    const rs = kubeProxyRules(base, 'node1');
    for (const r of [...rs.nat.rules, ...rs.filter.rules]) expect(splitArgs(renderRule(r))).toEqual(['-A', r.chain, ...r.args]);
  });

  it('parseRuleLine: options, modules, negation and valueless flags', () => {
    const r = parseRuleLine('nat', '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -m comment --comment "x y" -j MASQUERADE --random-fully');
    expect(r.table).toBe('nat');
    expect(r.chain).toBe('KUBE-POSTROUTING');
    expect(r.modules).toEqual(['mark', 'comment']);
    expect([...r.negated]).toEqual(['--mark']);
    expect(Object.fromEntries(r.options)).toEqual({ '--mark': '0x4000/0x4000', '--comment': 'x y', '-j': 'MASQUERADE', '--random-fully': '' });
    expect(r.counters).toBeUndefined();
  });
});

describe('parseSave on iptables-save -c output', () => {
  const text = readFileSync(join(FIXTURES, 'iptables-save', 'nodeport-node1.save'), 'utf8');
  const save = parseSave(text);
  const find = (table: string, chainName: string, pred: (r: ParsedRule) => boolean = () => true) =>
    save.rules.filter((r) => r.table === table && r.chain === chainName && pred(r));

  it('reads tables, chains (built-in ones too) and every rule', () => {
    expect(save.chains.get('nat')).toEqual([
      'PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING',
      EXT, 'KUBE-KUBELET-CANARY', 'KUBE-MARK-MASQ', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-PROXY-CANARY', SEP_WEB2, SEP_WEB1, 'KUBE-SERVICES', SVC,
    ]);
    expect(save.chains.get('mangle')).toEqual(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING', 'KUBE-IPTABLES-HINT', 'KUBE-KUBELET-CANARY', 'KUBE-PROXY-CANARY']);
    expect(save.chains.get('filter')).toHaveLength(11);
    expect(save.rules.filter((r) => r.table === 'filter')).toHaveLength(15);
    expect(save.rules.filter((r) => r.table === 'nat')).toHaveLength(19);
  });

  it('reads [packets:bytes] counters', () => {
    const [nodePort] = find('nat', 'KUBE-NODEPORTS');
    expect(nodePort!.counters).toEqual({ packets: 2, bytes: 120 });
    expect(find('filter', 'INPUT')[2]!.counters).toEqual({ packets: 52, bytes: 3120 });
    expect(find('nat', 'KUBE-POSTROUTING')[0]!.counters).toEqual({ packets: 0, bytes: 0 });
    expect(save.rules.every((r) => r.counters !== undefined)).toBe(true);
  });

  it('reads the reordered masquerade rule, its negation and /32 forms', () => {
    const [masq] = find('nat', SVC);
    expect(masq!.text.startsWith('[0:0] -A KUBE-SVC-')).toBe(true);
    expect(opt(masq, '-s')).toBe('10.244.0.0/16');
    expect([...masq!.negated]).toEqual(['-s']);
    expect(opt(masq, '-d')).toBe('172.31.0.5/32');
    expect(opt(masq, '-p')).toBe('tcp');
    expect(opt(masq, '--dport')).toBe('443');
    expect(comment(masq)).toBe('default/web:https cluster IP');
    expect(masq!.modules).toEqual(['comment', 'tcp']);
    expect(target(masq)).toBe('KUBE-MARK-MASQ');
  });

  it('reads the normalized MARK, statistic and DNAT rules', () => {
    expect(opt(find('nat', 'KUBE-MARK-MASQ')[0], '--set-xmark')).toBe('0x4000/0x4000');
    expect(opt(find('nat', 'KUBE-POSTROUTING')[1], '--set-xmark')).toBe('0x4000/0x0');
    expect([...find('nat', 'KUBE-POSTROUTING')[0]!.negated]).toEqual(['--mark']);
    expect(opt(find('nat', SVC)[1], '--probability')).toBe('0.50000000000');
    expect(opt(find('nat', SEP_WEB1)[1], '--to-destination')).toBe('10.244.0.3:8443');
    expect(opt(find('nat', SEP_WEB1)[0], '-s')).toBe('10.244.0.3/32');
  });

  /** Our rule in the form iptables-save prints it: /32 hosts, --set-xmark marks, 11-decimal probabilities. */
  function normalize(r: ParsedRule) {
    const options = new Map(r.options);
    for (const k of ['-s', '-d']) {
      const v = options.get(k);
      if (v && !v.includes('/')) options.set(k, `${v}/32`);
    }
    const or = options.get('--or-mark');
    if (or !== undefined) {
      options.delete('--or-mark');
      options.set('--set-xmark', `${or}/${or}`);
    }
    const xor = options.get('--xor-mark');
    if (xor !== undefined) {
      options.delete('--xor-mark');
      options.set('--set-xmark', `${xor}/0x0`);
    }
    const prob = options.get('--probability');
    if (prob !== undefined) options.set('--probability', Number(prob).toFixed(11));
    return {
      table: r.table,
      chain: r.chain,
      options: Object.fromEntries([...options].sort(([a], [b]) => (a < b ? -1 : 1))),
      modules: [...r.modules].sort(),
      negated: [...r.negated].sort(),
    };
  }

  it('the lab\'s payload for node1 is, rule for rule and in chain order, what this save shows', () => {
    const ours = parseSave(initialRestore(kubeProxyRules(base, 'node1'))).rules;
    const byChain = (rules: ParsedRule[], f: (r: ParsedRule) => unknown) => {
      const out = new Map<string, unknown[]>();
      for (const r of rules) {
        const key = `${r.table}/${r.chain}`;
        out.set(key, [...(out.get(key) ?? []), f(r)]);
      }
      return Object.fromEntries([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
    };
    expect(byChain(ours, normalize)).toEqual(byChain(save.rules, normalize));
  });

  it('the comparison notices a changed rule', () => {
    const changed = text.replace('--to-destination 10.244.0.3:8443', '--to-destination 10.244.0.3:8444');
    const a = parseSave(changed).rules.map(normalize);
    const b = save.rules.map(normalize);
    expect(a).not.toEqual(b);
  });
});
