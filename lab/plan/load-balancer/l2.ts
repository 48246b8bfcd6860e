import { join } from 'node:path';
import { labDir } from '../../state/store.js';
import type { Topology } from '../../topology/schema.js';
import { HOST_IFNAME, namespaceName } from '../../topology/names.js';
import { cidrContains, parseCidr, parseIPv4 } from '../../util/ipv4.js';
import { PROJECT_ROOT } from '../../util/project.js';
import type { DaemonSpec, PodNetworkPlan } from '../pod-network/types.js';
import { leadsToLoadBalancerIP } from './announcements.js';
import { l2Leaders } from './l2-election.js';
import type { LoadBalancer } from './types.js';

/**
 * l2 (MetalLB's layer-2 mode): for each LoadBalancer IP one node, the leader (l2-election.ts),
 * answers ARP for it on the node network with its eth0's MAC; the IP is never an address of a
 * node. A userspace speaker runs in every node (lab/workload/arp-speaker.ts); the IPs it owns
 * are the lines of its file, rewritten by a sync, which then signals it (SIGHUP): a node that
 * gains an IP sends a gratuitous ARP, and the router's neighbour entry moves to it.
 */

const SPEAKER_SCRIPT = join(PROJECT_ROOT, 'dist', 'lab', 'workload', 'arp-speaker.js');

/** The file of IPs a node's speaker answers for, relative to the lab's state folder. */
export const ownedFile = (node: string) => `l2/${node}.owned`;

/** The IPs a node leads now, one per line. */
export const ownedBy = (t: Topology, node: string): string => l2Leaders(t).filter((l) => l.leader === node).map((l) => `${l.ip}\n`).join('');

function speaker(t: Topology, node: string): DaemonSpec {
  const dir = labDir(t.lab);
  const owned = join(dir, ownedFile(node));
  return {
    host: node,
    ns: namespaceName(t.lab, node),
    name: 'arp-speaker',
    argv: [process.execPath, SPEAKER_SCRIPT, HOST_IFNAME, owned],
    files: [{ path: ownedFile(node), content: ownedBy(t, node) }],
    // Its owned-IP file stands for a socket: it is in its command line, telling it from any other process.
    socket: owned,
    log: join(dir, 'l2', `${node}.log`),
    wave: 1,
    ready: { established: [], routes: [], logLine: 'ready' },
  };
}

export const l2LoadBalancer: LoadBalancer = {
  mode: 'l2',
  announcementLabel: (ip) => `ARP ${ip} (leader)`,
  check(t, at) {
    // ARP reaches only the hosts of one network: the IP must lie in a node's network.
    const nodeNets = t.nodes.map((n) => parseCidr(t.networks.find((x) => x.name === n.network)?.subnet ?? ''));
    t.services.forEach((s, i) =>
      s.loadBalancerIPs.forEach((ip, j) => {
        const addr = parseIPv4(ip);
        if (addr !== undefined && !nodeNets.some((c) => c && cidrContains(c, addr))) at(['services', i, 'loadBalancerIPs', j], `loadBalancer.mode l2: ${ip} is outside every node network; a node can answer ARP only on its own network`);
      }),
    );
  },
  keepsRouterRoute: (t, route) => !leadsToLoadBalancerIP(t, route.to),
  extend: (t, podNetwork: PodNetworkPlan): PodNetworkPlan => ({ ...podNetwork, daemons: [...podNetwork.daemons, ...t.nodes.map((n) => speaker(t, n.name))] }),
  announcements: (t) => l2Leaders(t).map((l) => ({ service: l.service, ip: l.ip, policy: t.services.find((s) => `${s.namespace}/${s.name}` === l.service)!.externalTrafficPolicy, nodes: l.leader ? [l.leader] : [] })),
  expectedRoutes: () => [],
  expectedNeighbours: (t) =>
    l2Leaders(t).flatMap((l) =>
      t.routers.map((r) => ({ router: r.name, ns: namespaceName(t.lab, r.name), ip: l.ip, node: l.leader, nodeNs: l.leader ? namespaceName(t.lab, l.leader) : undefined })),
    ),
};
