import type { Topology } from '../topology/schema.js';
import type { Fault, FaultContext } from './catalogue.js';
import { sendingPods } from './catalogue.js';

/** Faults inside one pod, or between a pod and its node: an MTU mismatch and a stale DNS conntrack entry. Pure. */

/** The pod whose MSS a walkthrough checks (a pod's SYN-ACK advertises its eth0 MTU less 40). */
export function mssCheckedPod(c: FaultContext): string | undefined {
  const pods = new Set(c.topology.pods.map((p) => p.name));
  for (const path of c.walkthrough?.paths ?? []) {
    for (const s of path.steps) {
      const host = s.at?.split(':')[0];
      if (s.expect?.packet?.mss !== undefined && host && pods.has(host)) return host;
    }
  }
  return undefined;
}

export const mtuMismatch: Fault = {
  name: 'mtu-mismatch',
  description: "a pod's eth0 left at 1500 on a 1450 vxlan pod network (its bridge has 1450): the pod advertises an MSS 50 bytes too large for the tunnel",
  keywords: ['mtu', 'mss', 'jumbo', 'fragment'],
  where: "podNetwork.mode vxlan, where the walkthrough checks a pod's MSS (nodeport)",
  refusal(c) {
    if (c.topology.podNetwork.mode !== 'vxlan') return `in podNetwork.mode ${c.topology.podNetwork.mode} every link carries 1500, so a pod's MTU has nothing to mismatch that TCP's MSS would not hide (vxlan mode has the 1450 tunnel)`;
    return mssCheckedPod(c) ? undefined : "this lab's walkthrough checks no pod's MSS, so verify could not see an MTU mismatch";
  },
  async plan(c, read) {
    const pod = mssCheckedPod(c)!;
    const mtu = /\bmtu (\d+)/.exec(await read(pod, ['ip', '-o', 'link', 'show', 'eth0']))?.[1] ?? '1450';
    const set = (v: string) => ({ host: pod, argv: ['ip', 'link', 'set', 'eth0', 'mtu', v] });
    return { fault: this.name, summary: `${pod}'s eth0 MTU set to 1500 (its bridge and flannel.1 have ${mtu})`, breakSteps: [set('1500')], repairSteps: [set(mtu)], healthy: { host: pod, argv: ['ip', '-o', 'link', 'show', 'eth0'], pattern: ` mtu ${mtu} ` } };
  },
};

/** The pod that resolves a Service name (a path whose traffic goes to a DNS name), and the cluster DNS address. */
export function dnsClient(c: FaultContext): { pod: string; dns: string } | undefined {
  const dns = c.topology.cluster.dns;
  if (!dns) return undefined;
  const pods = new Set(sendingPods(c));
  const byName = (c.walkthrough?.paths ?? []).map((p) => p.traffic).find((tr) => tr && pods.has(tr.from) && !/^\d+\.\d+\.\d+\.\d+:/.test(tr.to));
  return byName ? { pod: byName.from, dns } : undefined;
}

/** The few source ports the pod's resolver is narrowed to (a client reusing its ports, as a node-local cache does). */
export const STALE_PORTS = { first: 40000, last: 40007 } as const;

const podAddress = (t: Topology, pod: string) => t.pods.find((p) => p.name === pod)!;

export const staleDnsConntrack: Fault = {
  name: 'stale-dns-conntrack',
  description: "a stale UDP conntrack entry toward kube-dns's ClusterIP, untranslated: the pod's DNS queries match it and never reach CoreDNS (kubernetes #139628)",
  keywords: ['conntrack', 'dns', 'udp', 'stale', 'coredns', 'kube-dns'],
  where: 'scenarios with a cluster DNS and a pod that resolves a name (clusterip), every mode',
  refusal: (c) => (dnsClient(c) ? undefined : 'no pod of this lab resolves a Service name through a cluster DNS'),
  async plan(c, read) {
    const { pod, dns } = dnsClient(c)!;
    const p = podAddress(c.topology, pod);
    const range = (await read(pod, ['sysctl', '-n', 'net.ipv4.ip_local_port_range'])).trim().split(/\s+/).join(' ') || '32768 60999';
    const ports = Array.from({ length: STALE_PORTS.last - STALE_PORTS.first + 1 }, (_, i) => STALE_PORTS.first + i);
    const entry = (port: number) => ({ host: p.node, argv: ['conntrack', '-I', '-p', 'udp', '-s', p.address, '-d', dns, '--sport', String(port), '--dport', '53', '-r', dns, '-q', p.address, '--reply-port-src', '53', '--reply-port-dst', String(port), '-t', '3600', '-u', 'SEEN_REPLY,ASSURED'] });
    const portRange = (v: string) => ({ host: pod, argv: ['sysctl', '-qw', `net.ipv4.ip_local_port_range=${v}`] });
    return {
      fault: this.name,
      summary: `${ports.length} untranslated UDP entries ${p.address}:${STALE_PORTS.first}-${STALE_PORTS.last} > ${dns}:53 in ${p.node}'s conntrack; ${pod}'s resolver uses only those ports`,
      breakSteps: [portRange(`${STALE_PORTS.first} ${STALE_PORTS.last}`), ...ports.map(entry)],
      repairSteps: [{ host: p.node, argv: ['conntrack', '-D', '-p', 'udp', '-s', p.address, '-d', dns, '--dport', '53'], mayFail: true }, portRange(range)],
      healthy: { host: p.node, argv: ['conntrack', '-L', '-p', 'udp', '-s', p.address, '-d', dns, '--dport', '53'], pattern: `src=${dns} dst=${p.address} sport=53`, absent: true },
    };
  },
};
