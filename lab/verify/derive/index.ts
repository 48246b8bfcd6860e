import { InputError } from '../../errors.js';
import { displayPath } from '../../topology/paths.js';
import type { Topology } from '../../topology/schema.js';
import type { Walkthrough, WalkthroughPath } from '../walkthrough.js';
import { selects } from '../../topology/relations.js';
import { dropRule, pathsOfWay, type PathContext } from './paths.js';
import { fateOf, type Entry } from './semantics.js';
import { waysIn } from './ways-in.js';
import { localhostPath, localhostWaysIn } from './localhost.js';
import { udpPath } from './udp.js';
import { ipv6View } from '../../topology/family.js';

/**
 * A walkthrough derived from a topology, for a world whose file names none: every Service port,
 * every way in, what kube-proxy would do with it, as steps proven by captures, conntrack and
 * counters. Pure: the expectation comes from the topology, never from the rules the lab wrote.
 */
export interface DerivedWalkthrough {
  walkthrough: Walkthrough;
  /** What is not tried, and why (an SCTP port, a DNS pod over TCP, an address no route leads to). */
  skipped: string[];
}

/** A large world watches the pods' eth0 only while the captures stay few. */
const MAX_OBSERVED = 48;

export function deriveWalkthrough(t: Topology, topologyPath = `${t.lab}.yaml`): DerivedWalkthrough {
  const derived = waysIn(t);
  const { skipped } = derived;
  const ways = [...derived.ways, ...localhostWaysIn(t, skipped)];
  // A dual-stack world is tried in each family: its IPv6 view (the hosts at their IPv6 addresses, the Services with IPv6 at their IPv6 ClusterIP).
  const v6 = ipv6View(t);
  const ways6 = v6 ? waysIn(v6) : { ways: [], skipped: [] };
  const hosts = new Set([...ways.map((w) => w.from), ...t.nodes.map((n) => n.name)]);
  const podsServed = t.pods.filter((p) => t.services.some((s) => selects(s, p)) || (t.endpointSlices ?? []).some((e) => e.endpoints.some((x) => x.address === p.address)));
  const watchedPods = new Set(hosts.size + podsServed.length <= MAX_OBSERVED ? podsServed.map((p) => p.name) : []);
  const c: PathContext = { t, watchedPods, ruleCount: refusalRules(t) };
  // IPv6 refusals are proved without a rule counter step: the rule and map steps read the IPv4 tables.
  // The pods answer UDP over IPv4 only, so the IPv6 view tries TCP ports alone.
  const c6: PathContext | undefined = v6 && { t: v6, watchedPods, ruleCount: new Map() };
  const tcp6 = ways6.ways.filter((w) => w.port.protocol === 'TCP');
  const paths: WalkthroughPath[] = [
    ...ways.flatMap((w) => pathsOfWay(c, w).map((p) => udpPath(w, localhostPath(w, p)))),
    ...(c6 ? tcp6.flatMap((w) => pathsOfWay(c6, w)) : []),
  ];
  skipped.push(...ways6.skipped.map((s) => `IPv6: ${s}`), ...ways6.ways.filter((w) => w.port.protocol === 'UDP').map((w) => `IPv6: ${w.service.name} ${w.port.port}/UDP (the lab's pods answer UDP over IPv4 only)`));
  if (!paths.some((p) => p.outcome === 'answered')) {
    const why = [...skipped, ...paths.map((p) => `${p.name}: ${p.summary}`)];
    throw new InputError([{ file: displayPath(topologyPath), field: 'services', message: `nothing in this world can be reached, so a derived walkthrough has nothing to prove${why.length ? `:\n  ${why.join('\n  ')}` : ' (it has no Service)'}` }]);
  }
  const observe = [...new Set(paths.flatMap((p) => p.steps.flatMap((s) => (s.at?.includes(':') ? [s.at] : []))))];
  const walkthrough: Walkthrough = {
    title: `${t.lab}: every Service port and every way in, as kube-proxy would treat it (derived from the topology)`,
    seed: '',
    traffic: paths[0]!.traffic!,
    observe,
    paths,
  };
  return { walkthrough, skipped };
}

/**
 * How many refusing rules kube-proxy writes per "node table chain jump", over every Service port
 * (tried or not): a rule counter proves a path's refusal only when that rule is the only one.
 */
function refusalRules(t: Topology): Map<string, number> {
  const rules = new Map<string, Set<string>>();
  const count = (node: string, r: ReturnType<typeof dropRule>, target: string) => {
    const key = `${node} ${r.table} ${r.chain} ${r.jump}`;
    rules.set(key, (rules.get(key) ?? new Set()).add(target));
  };
  for (const service of t.services) {
    for (const port of service.ports) {
      const targets: [Entry, string][] = [['clusterIP', service.clusterIP]];
      if (service.type !== 'ClusterIP' && port.nodePort !== undefined) targets.push(['nodePort', `nodePort ${port.nodePort}`]);
      if (service.type === 'LoadBalancer') targets.push(...service.loadBalancerIPs.map((ip): [Entry, string] => ['loadBalancer', ip]));
      targets.push(...service.externalIPs.map((ip): [Entry, string] => ['externalIP', ip]));
      for (const node of t.nodes) {
        for (const [entry, target] of targets) {
          const fate = fateOf(t, service, port, entry, node.name);
          const key = `${target}:${port.port}/${port.protocol}`;
          if (fate.kind !== 'answered') count(node.name, dropRule({ service, port, entry }, fate), key);
          else if (entry === 'loadBalancer' && service.loadBalancerSourceRanges.length > 0) count(node.name, dropRule({ service, port, entry }, { kind: 'drop', why: '', firewall: true }), key);
        }
      }
    }
  }
  return new Map([...rules].map(([k, v]) => [k, v.size]));
}
