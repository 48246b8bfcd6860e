/** Naming rules in one place: namespaces, and the interfaces the lab creates. */

export const LAB_MARKER_PREFIX = 'kube-packet-lab:';

/** Every name a user picks (lab, host, network, service): it becomes part of namespace and interface names. */
export const NAME_MAX = 30;
/** The name pattern, optionally bounded in length (a namespace is <lab>-<host>, so up to 61). */
export const namePattern = (max?: number) => new RegExp(`^[a-z][a-z0-9-]${max === undefined ? '*' : `{0,${max - 1}}`}$`);
export const NAME_PATTERN = namePattern();
export const NAME_RULE = 'must start with a letter and use only a-z, 0-9 and "-"';
export const isLabName = (s: string) => namePattern(NAME_MAX).test(s);
/** The kernel refuses interface names longer than this (IFNAMSIZ - 1). */
export const IFNAMSIZ = 15;

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
/** A multi-homed node's k-th more interface (nodes[].interfaces[k-1]): eth1, eth2, ... */
export const extraIfname = (k: number) => `eth${k}`;
/** The router's port toward a node's k-th more interface. */
export const extraRouterPortName = (host: string, k: number) => `p${k}-${host}`;
