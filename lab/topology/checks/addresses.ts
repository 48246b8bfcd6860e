import { cidrContains, cidrsOverlap, firstHost, isNetworkOrBroadcast, unusableRange, type Cidr } from '../../util/ipv4.js';
import { bridgeAddressOf } from '../relations.js';
import type { Node } from '../schema.js';
import type { CheckContext } from './context.js';

/**
 * Addresses: cluster ranges apart, networks apart, every host address inside its network (or its
 * node's podCIDR) and owned once. Fills the context's parsed ranges for the later checks.
 */
export function checkAddresses(c: CheckContext): void {
  const { t } = c;
  c.podRange = c.cidrAt(['cluster', 'podCIDR'], t.cluster.podCIDR);
  c.serviceRange = c.cidrAt(['cluster', 'serviceCIDR'], t.cluster.serviceCIDR);
  const { podRange, serviceRange } = c;
  // Refused here, not at apply: the kernel takes some of these ranges, and others build a lab that cannot carry traffic.
  const usable = (path: PropertyKey[], range: Cidr | undefined) => {
    const why = range && unusableRange(range);
    if (why) c.at(path, why);
  };
  usable(['cluster', 'podCIDR'], podRange);
  usable(['cluster', 'serviceCIDR'], serviceRange);
  if (podRange && serviceRange && cidrsOverlap(podRange, serviceRange)) {
    c.at(['cluster', 'serviceCIDR'], `${t.cluster.serviceCIDR} overlaps cluster.podCIDR ${t.cluster.podCIDR}`);
  }

  t.networks.forEach((n, i) => {
    if (c.networks.has(n.name)) c.at(['networks', i, 'name'], `network "${n.name}" is defined twice`);
    const subnet = c.cidrAt(['networks', i, 'subnet'], n.subnet);
    c.networks.set(n.name, subnet);
    if (!subnet) return;
    usable(['networks', i, 'subnet'], subnet);
    for (const [other, oc] of c.networks) {
      if (other !== n.name && oc && cidrsOverlap(subnet, oc)) c.at(['networks', i, 'subnet'], `${n.subnet} overlaps network "${other}"`);
    }
    if (podRange && cidrsOverlap(subnet, podRange)) c.at(['networks', i, 'subnet'], `${n.subnet} overlaps cluster.podCIDR`);
    if (serviceRange && cidrsOverlap(subnet, serviceRange)) c.at(['networks', i, 'subnet'], `${n.subnet} overlaps cluster.serviceCIDR`);
  });

  const onNetwork = (path: PropertyKey[], network: string, address: string) => {
    if (!c.networks.has(network)) {
      c.at([...path, 'network'], `no network named "${network}" (known: ${[...c.networks.keys()].join(', ')})`);
      return;
    }
    const subnet = c.networks.get(network);
    const a = c.ipAt([...path, 'address'], address);
    if (a === undefined || !subnet) return;
    if (!cidrContains(subnet, a)) c.at([...path, 'address'], `${address} is not inside network "${network}" (${subnet.text})`);
    else if (isNetworkOrBroadcast(subnet, a)) c.at([...path, 'address'], `${address} is the network or broadcast address of ${subnet.text}`);
    c.claimAddress([...path, 'address'], address);
  };

  t.routers.forEach((r, i) => {
    const seen = new Set<string>();
    r.interfaces.forEach((iface, j) => {
      if (seen.has(iface.network)) c.at(['routers', i, 'interfaces', j, 'network'], `router already has an interface on "${iface.network}"`);
      seen.add(iface.network);
      onNetwork(['routers', i, 'interfaces', j], iface.network, iface.address);
    });
  });

  t.nodes.forEach((n, i) => {
    onNetwork(['nodes', i], n.network, n.address);
    checkNodeAttachments(c, n, i, onNetwork);
    const pc = c.cidrAt(['nodes', i, 'podCIDR'], n.podCIDR);
    if (!pc) return;
    if (podRange && !(cidrContains(podRange, pc.network) && pc.prefix >= podRange.prefix)) {
      c.at(['nodes', i, 'podCIDR'], `${n.podCIDR} is not inside cluster.podCIDR ${t.cluster.podCIDR}`);
    }
    for (const [other, oc] of c.podCidrs) {
      if (cidrsOverlap(pc, oc)) c.at(['nodes', i, 'podCIDR'], `${n.podCIDR} overlaps the podCIDR of node "${other}"`);
    }
    c.podCidrs.set(n.name, pc);
    if (n.bridgeAddress === undefined) c.claimAddress(['nodes', i, 'podCIDR'], firstHost(pc));
    else {
      const b = c.ipAt(['nodes', i, 'bridgeAddress'], n.bridgeAddress);
      if (b !== undefined && (!cidrContains(pc, b) || isNetworkOrBroadcast(pc, b))) c.at(['nodes', i, 'bridgeAddress'], `${n.bridgeAddress} is not a host address of podCIDR ${n.podCIDR}`);
      else if (b !== undefined) c.claimAddress(['nodes', i, 'bridgeAddress'], n.bridgeAddress);
    }
  });

  t.clients.forEach((cl, i) => {
    onNetwork(['clients', i], cl.network, cl.address);
    extrasOnNetwork(c, ['clients', i], cl.network, cl.extraAddresses);
  });

  t.pods.forEach((p, i) => {
    const node = t.nodes.find((n) => n.name === p.node);
    if (!node) {
      c.at(['pods', i, 'node'], `no node named "${p.node}" (known: ${t.nodes.map((n) => n.name).join(', ')})`);
      return;
    }
    const a = c.ipAt(['pods', i, 'address'], p.address);
    const pc = c.podCidrs.get(node.name);
    if (a === undefined || !pc) return;
    if (!cidrContains(pc, a)) c.at(['pods', i, 'address'], `${p.address} is not inside the podCIDR of node "${node.name}" (${pc.text})`);
    else if (isNetworkOrBroadcast(pc, a)) c.at(['pods', i, 'address'], `${p.address} is the network or broadcast address of ${pc.text}`);
    else if (p.address === bridgeAddressOf(node)) c.at(['pods', i, 'address'], `${p.address} belongs to ${node.name}'s bridge ${node.bridge}`);
    else c.claimAddress(['pods', i, 'address'], p.address);
  });
}

/** A host's more addresses on eth0: host addresses of its network, each taken once. */
function extrasOnNetwork(c: CheckContext, at: PropertyKey[], network: string, extras: string[] | undefined): void {
  (extras ?? []).forEach((extra, j) => {
    const path = [...at, 'extraAddresses', j];
    const subnet = c.networks.get(network);
    const x = c.ipAt(path, extra);
    if (x === undefined || !subnet) return;
    if (!cidrContains(subnet, x) || isNetworkOrBroadcast(subnet, x)) c.at(path, `${extra} is not a host address of network "${network}" (${subnet.text})`);
    else c.claimAddress(path, extra);
  });
}

/** A node's more addresses on eth0 (extraAddresses) and its more networks (interfaces: eth1, eth2, ...). */
function checkNodeAttachments(c: CheckContext, n: Node, i: number, onNetwork: (path: PropertyKey[], network: string, address: string) => void): void {
  extrasOnNetwork(c, ['nodes', i], n.network, n.extraAddresses);
  const attached = new Set([n.network]);
  (n.interfaces ?? []).forEach((iface, j) => {
    const path = ['nodes', i, 'interfaces', j];
    if (attached.has(iface.network)) c.at([...path, 'network'], `node "${n.name}" is already on network "${iface.network}"${iface.network === n.network ? ' (its eth0)' : ''}`);
    attached.add(iface.network);
    onNetwork(path, iface.network, iface.address);
  });
}
