import type { Topology } from '../topology/schema.js';

/**
 * Cluster DNS, as data: the names a DNS pod serves, and the resolv.conf kubelet gives every
 * pod (dnsPolicy: ClusterFirst). Pure.
 */

/** "<service>.<namespace>.svc.<domain>" → ClusterIP, for every service of the topology. */
export function clusterDnsRecords(t: Topology): Record<string, string> {
  const domain = t.cluster.domain.replace(/\.$/, '').toLowerCase();
  return Object.fromEntries(t.services.map((s) => [`${s.name}.${s.namespace}.svc.${domain}`, s.clusterIP]));
}

/**
 * The first line of every resolv.conf the lab writes (kubelet writes none; a comment is harmless).
 * It lets a later `up` recognise a file left behind when the lab's state was lost (a reboot
 * empties /run, not /etc), and take it over instead of refusing.
 */
export const RESOLV_CONF_HEADER = '# kube-packet-lab: cluster DNS for this pod, as kubelet writes it for dnsPolicy ClusterFirst';

/**
 * The resolv.conf kubelet writes into a pod in namespace `podNamespace`: the cluster DNS
 * service as the only nameserver, the namespace-relative search list, and ndots:5, so that
 * "web" and "web.default" resolve too (and a full name with fewer than five dots tries the
 * search list first).
 */
export function podResolvConf(clusterDNS: string, domain: string, podNamespace = 'default'): string {
  const d = domain.replace(/\.$/, '');
  return [RESOLV_CONF_HEADER, `nameserver ${clusterDNS}`, `search ${podNamespace}.svc.${d} svc.${d} ${d}`, 'options ndots:5', ''].join('\n');
}

/**
 * Where `ip netns exec` finds a namespace's own resolv.conf: it bind-mounts every file of
 * /etc/netns/<ns>/ over /etc/<file> for the command it runs.
 */
export const NETNS_ETC = process.env.LAB_NETNS_ETC ?? '/etc/netns';
export const netnsEtcDir = (ns: string) => `${NETNS_ETC}/${ns}`;
