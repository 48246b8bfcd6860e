import type { NodeRuleset } from '../../lab/plan/kube-proxy/iptables.js';
import type { NftRuleset } from '../../lab/plan/kube-proxy/nftables.js';
import { parseSave, type ParsedRule } from '../../lab/plan/kube-proxy/rules.js';
import { resyncRestore } from '../../lab/plan/kube-proxy/iptables.js';
import { cidrContains, parseCidr, parseIPv4 } from '../../lab/util/ipv4.js';

/**
 * A small packet-flow tracer over the lab's generated rules, in the manner of upstream's
 * runPacketFlowTests: where may a new connection from `src` to `dst:port` go? Random choices
 * (statistic, numgen) are followed down every branch; affinity and "source is local" matches
 * never match (the sources here are a pod and an external client). The answer is the sorted
 * DNAT targets ("ip:port, ip:port"), or DROP / REJECT, with whether the packet was marked for
 * masquerade. A rule it does not understand throws, so it cannot pass by ignoring one.
 */
export interface FlowResult {
  output: string;
  masq: boolean;
}

interface Outcome {
  kind: 'continue' | 'dnat' | 'DROP' | 'REJECT';
  target?: string;
  masq: boolean;
}

const inCidr = (cidr: string, ip: string) => {
  const c = parseCidr(cidr.includes('/') ? cidr : `${cidr}/32`);
  const a = parseIPv4(ip);
  return c !== undefined && a !== undefined && cidrContains(c, a);
};

function summarise(outcomes: Outcome[]): FlowResult | undefined {
  const dnat = outcomes.filter((o) => o.kind === 'dnat');
  if (dnat.length > 0) return { output: [...new Set(dnat.map((o) => o.target!))].sort().join(', '), masq: dnat.some((o) => o.masq) };
  const verdict = outcomes.find((o) => o.kind === 'DROP' || o.kind === 'REJECT');
  return verdict ? { output: verdict.kind, masq: false } : undefined;
}

export function traceIptables(r: NodeRuleset, src: string, dst: string, port: number): FlowResult {
  const rules = parseSave(resyncRestore(r)).rules;
  const chain = (table: string, name: string) => rules.filter((x) => x.table === table && x.chain === name);
  const matches = (x: ParsedRule) => {
    const o = x.options;
    const test = (opt: string, ok: boolean) => !o.has(opt) || (x.negated.has(opt) ? !ok : ok);
    return (
      test('-s', inCidr(o.get('-s') ?? '0.0.0.0/0', src)) &&
      test('-d', inCidr(o.get('-d') ?? '0.0.0.0/0', dst)) &&
      test('--dport', o.get('--dport') === String(port)) &&
      !o.has('--src-type') && // the sources traced are never the node's own addresses
      !o.has('--dst-type') && // nor are the destinations
      !o.has('--rcheck') // no affinity memory yet
    );
  };
  const walk = (table: string, name: string, masq: boolean): Outcome[] => {
    let live = [masq];
    const done: Outcome[] = [];
    for (const x of chain(table, name)) {
      if (!matches(x)) continue;
      const random = x.modules.includes('statistic');
      const next: boolean[] = [];
      for (const m of live) {
        const j = x.options.get('-j') ?? '';
        const results: Outcome[] =
          j === 'DNAT' ? [{ kind: 'dnat', target: x.options.get('--to-destination')!, masq: m }]
          : j === 'KUBE-MARK-MASQ' ? [{ kind: 'continue', masq: true }]
          : j === 'DROP' || j === 'REJECT' ? [{ kind: j, masq: m }]
          : /^KUBE-/.test(j) ? walk(table, j, m)
          : fail(`unexpected target ${j} in ${x.text}`);
        for (const res of results) (res.kind === 'continue' ? next.push(res.masq) : done.push(res));
        if (random) next.push(m);
      }
      live = next;
    }
    return [...done, ...live.map((m) => ({ kind: 'continue' as const, masq: m }))];
  };
  const nat = summarise(walk('nat', 'KUBE-SERVICES', false));
  if (nat) return nat;
  // Not translated: the filter table decides (no endpoints: REJECT; no local endpoints: DROP).
  const filter = summarise([...walk('filter', 'KUBE-SERVICES', false), ...walk('filter', 'KUBE-EXTERNAL-SERVICES', false)]);
  return filter ?? { output: 'no rule', masq: false };
}

export function traceNftables(r: NftRuleset, src: string, dst: string, port: number, proto = 'tcp'): FlowResult {
  const key = `${dst} . ${proto} . ${port}`;
  const elementOf = (map: string) => r.elements.find((e) => e.container === map && e.key === key)?.value;
  const walk = (name: string, masq: boolean): Outcome[] => {
    let m = masq;
    for (const { rule } of r.rules.filter((x) => x.chain === name)) {
      let g: RegExpExecArray | null;
      if ((g = /^ip daddr (\S+) ip saddr != (\S+) jump mark-for-masquerade$/.exec(rule))) {
        if (inCidr(g[1]!, dst) && !inCidr(g[2]!, src)) m = true;
      } else if (rule === 'jump mark-for-masquerade') m = true;
      else if ((g = /^ip saddr (\d\S+) jump mark-for-masquerade$/.exec(rule))) {
        if (inCidr(g[1]!, src)) m = true;
      } else if ((g = /^ip saddr (\d\S+) goto (\S+)$/.exec(rule))) {
        if (inCidr(g[1]!, src)) return walk(g[2]!, m);
      } else if (/^fib saddr type local /.test(rule) || /^ip saddr @affinity-/.test(rule) || /^update @affinity-/.test(rule)) {
        // never matches the sources traced here / only remembers
      } else if ((g = /^goto (\S+)$/.exec(rule))) return walk(g[1]!, m);
      else if ((g = /^numgen random mod \d+ vmap \{ (.*) \}$/.exec(rule))) {
        const m2 = m;
        return g[1]!.split(' , ').flatMap((choice) => walk(/goto (\S+)$/.exec(choice)![1]!, m2));
      } else if ((g = /^meta l4proto \S+ dnat to (\S+)$/.exec(rule))) return [{ kind: 'dnat', target: g[1]!, masq: m }];
      else fail(`unexpected rule in ${name}: ${rule}`);
    }
    return [{ kind: 'continue', masq: m }];
  };
  const verdict = elementOf('service-ips');
  const nat = verdict ? summarise(walk(/^goto (\S+)$/.exec(verdict)![1]!, false)) : undefined;
  if (nat) return nat;
  // Not translated: the filter chains' verdict maps decide (no endpoints: reject; no local endpoints: drop).
  const none = elementOf('no-endpoint-services');
  if (none === 'drop') return { output: 'DROP', masq: false };
  if (none === 'goto reject-chain') return { output: 'REJECT', masq: false };
  return { output: 'no rule', masq: false };
}

function fail(message: string): never {
  throw new Error(message);
}
