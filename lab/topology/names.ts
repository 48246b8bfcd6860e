import type { Topology } from './schema.js';

/** Naming rules in one place: namespaces, and the interfaces the lab creates. */

export const LAB_MARKER_PREFIX = 'kube-packet-lab:';

export const namespaceName = (lab: string, host: string) => `${lab}-${host}`;

/** The alias set on each lab namespace's loopback: proof of ownership for `down`. */
export const labMarker = (lab: string) => `${LAB_MARKER_PREFIX}${lab}`;

/** Node side of a pod's veth pair, as a port on cbr0. */
export const podVethName = (pod: string) => `veth-${pod}`;
/** The router's bridge standing for one L2 network. */
export const networkBridgeName = (network: string) => `br-${network}`;
/** The router's port on a network bridge, toward one host. */
export const routerPortName = (host: string) => `p-${host}`;
/** The interface every node, client and pod sees as its own. */
export const HOST_IFNAME = 'eth0';

/** Every interface name derived from a user-chosen name, with the field it comes from. */
export function interfaceNames(t: Topology): { path: PropertyKey[]; ifname: string }[] {
  const out: { path: PropertyKey[]; ifname: string }[] = [];
  t.nodes.forEach((n, i) => {
    out.push({ path: ['nodes', i, 'bridge'], ifname: n.bridge });
    out.push({ path: ['nodes', i, 'name'], ifname: routerPortName(n.name) });
  });
  t.clients.forEach((c, i) => out.push({ path: ['clients', i, 'name'], ifname: routerPortName(c.name) }));
  t.routers.forEach((r, i) => r.interfaces.forEach((iface, j) => out.push({ path: ['routers', i, 'interfaces', j, 'network'], ifname: networkBridgeName(iface.network) })));
  t.pods.forEach((p, i) => out.push({ path: ['pods', i, 'name'], ifname: podVethName(p.name) }));
  return out;
}
