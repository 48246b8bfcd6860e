import type { ProxyMode, Topology } from '../topology/schema.js';
import { namespaceName } from '../topology/names.js';
import { clusterDnsRecords, netnsEtcDir, podResolvConf } from './dns.js';
import { podPorts } from './endpoints.js';
import { localhostNodePortsOn, proxySettings } from './kube-proxy/settings.js';
import { healthCheckServices } from './kube-proxy/health.js';
import { planProxySync } from './kube-proxy/sync.js';
import { planNetwork, type NetworkPlan } from './network.js';
import type { PodWorkload } from '../workload/protocol.js';

/** A pod's workload, served by the lab's one workload process inside the pod's namespace. */
export type WorkloadPlan = PodWorkload;

/** A file the lab writes outside its state folder, e.g. a pod's /etc/netns/<ns>/resolv.conf. */
export interface FilePlan {
  /** The folder the lab creates for it and removes at down. */
  dir: string;
  path: string;
  content: string;
}

export interface Plan extends NetworkPlan {
  lab: string;
  /** kube-proxy's rules, one payload per node namespace: for iptables-restore, or nft -f in nftables mode. */
  kubeProxy: { ns: string; node: string; mode: ProxyMode; payload: string; payload6?: string }[];
  workloads: WorkloadPlan[];
  /** The lab namespace the workload process lives in (the first node's: nodes last as long as the lab). */
  workloadHome: string;
  /** Each pod's resolv.conf when the cluster has DNS (cluster.dns), as kubelet writes it. */
  files: FilePlan[];
  /** kube-proxy runs a health check server (a LoadBalancer Service with externalTrafficPolicy Local and a healthCheckNodePort). */
  healthChecks: boolean;
}

/** Pure: everything `up` will do, computed before anything is touched. */
export function planLab(t: Topology): Plan {
  const kubeProxy = t.nodes.map((n) => {
    const sync = planProxySync(t, n.name, 'fresh');
    // payload6 only on a dual-stack cluster: an IPv4-only plan stays exactly what it was.
    return { ns: namespaceName(t.lab, n.name), node: n.name, mode: t.kubeProxy.mode, payload: sync.payload, ...(sync.payload6 !== undefined ? { payload6: sync.payload6 } : {}) };
  });
  return { ...planWithoutRules(t), kubeProxy };
}

/** The plan without kube-proxy's payloads (pods added to a running lab get theirs from a resync). */
function planWithoutRules(t: Topology): Plan {
  const network = planNetwork(t);
  // Localhost NodePorts: iptables mode accepts 127.0.0.1:<nodePort> (kube-proxy sets route_localnet,
  // guarded by KUBE-FIREWALL); nftables mode does not support them, so it leaves the sysctl alone.
  // With --iptables-localhost-nodeports=false, or --nodeport-addresses without 127.0.0.1, it is left alone too.
  const settings = proxySettings(t);
  for (const n of network.namespaces) {
    const node = n.role === 'node' ? t.nodes.find((x) => x.name === n.host) : undefined;
    if (node && localhostNodePortsOn(settings, node)) n.sysctls['net.ipv4.conf.all.route_localnet'] = '1';
  }
  const records = clusterDnsRecords(t);
  const zone = { domain: t.cluster.domain, records };
  const workloads = t.pods
    .map((p): WorkloadPlan => ({ pod: p.name, node: p.node, ns: namespaceName(t.lab, p.name), ip: p.address, ...(p.address6 !== undefined ? { ip6: p.address6 } : {}), ports: podPorts(t, p), ...udpPortsOf(t, p), kind: p.workload, ...(p.workload === 'dns' ? { zone } : {}) }))
    .filter((w) => w.ports.length > 0);
  const clusterDNS = t.cluster.dns;
  const files: FilePlan[] = clusterDNS
    ? t.pods.map((p) => {
        const dir = netnsEtcDir(namespaceName(t.lab, p.name));
        return { dir, path: `${dir}/resolv.conf`, content: podResolvConf(clusterDNS, t.cluster.domain) };
      })
    : [];
  return { ...network, lab: t.lab, kubeProxy: [], workloads, workloadHome: namespaceName(t.lab, t.nodes[0]!.name), files, healthChecks: healthCheckServices(t).length > 0 };
}

/**
 * The part of a lab's plan that creates some of its pods, for adding them to a running lab
 * (`lab scale`, `lab revive`): their namespaces and veth pairs, the bridge-port lines on their
 * nodes, their workloads and files. Cut from the whole plan, so a pod is built the same way
 * whether it came with `up` or later. No iptables payload: rules are resynced separately.
 */
export function planPods(t: Topology, pods: string[]): Plan {
  const full = planWithoutRules(t);
  const wanted = new Set(pods);
  const namespaces = full.namespaces.filter((n) => n.role === 'pod' && wanted.has(n.host));
  const nodeLines = new Map<string, string[]>();
  const createBatch: string[] = [];
  for (const pod of pods) {
    const part = full.podParts[pod];
    if (!part) throw new Error(`planPods: no pod named ${pod}`);
    createBatch.push(...part.create);
    nodeLines.set(part.node, [...(nodeLines.get(part.node) ?? []), ...part.nodeBatch]);
  }
  for (const [node, batch] of nodeLines) {
    namespaces.push({ ns: namespaceName(t.lab, node), host: node, role: 'node', batch, bridgeBatch: [], sysctls: {}, addresses: [] });
  }
  const podNs = new Set(namespaces.filter((n) => n.role === 'pod').map((n) => n.ns));
  return {
    ...full,
    namespaces,
    createBatch,
    podParts: Object.fromEntries(pods.map((p) => [p, full.podParts[p]!])),
    kubeProxy: [],
    podNetwork: withoutDaemons(full),
    workloads: full.workloads.filter((w) => wanted.has(w.pod)),
    files: full.files.filter((f) => [...podNs].some((ns) => f.dir.endsWith(`/${ns}`))),
  };
}

/** Only these pods' workloads, for starting them again in pods that exist (`lab revive`). */
export function planWorkloads(t: Topology, pods: string[]): Plan {
  const full = planWithoutRules(t);
  return { ...full, namespaces: [], createBatch: [], podParts: {}, kubeProxy: [], podNetwork: withoutDaemons(full), files: [], workloads: full.workloads.filter((w) => pods.includes(w.pod)) };
}

/** A plan cut to some pods starts no pod network daemon: the lab's own run since `up`. */
const withoutDaemons = (full: Plan): Plan['podNetwork'] => ({ ...full.podNetwork, daemons: [] });

/** The ports an HTTP pod answers datagrams on too (its UDP Service ports); the DNS pod serves UDP on all of its own. */
function udpPortsOf(t: Topology, p: Topology['pods'][number]): Pick<PodWorkload, 'udpPorts'> {
  const udp = p.workload === 'http' ? podPorts(t, p, 'UDP') : [];
  return udp.length > 0 ? { udpPorts: udp } : {};
}
