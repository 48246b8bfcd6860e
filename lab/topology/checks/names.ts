import { extraIfname, extraRouterPortName, HOST_IFNAME, IFNAMSIZ, networkBridgeName, podVethName, routerPortName } from '../names.js';
import type { Topology } from '../schema.js';
import { fieldName } from '../../util/yaml-file.js';
import type { CheckContext } from './context.js';

/**
 * Names: every host becomes a namespace <lab>-<name>, so hosts share one space; every interface
 * the lab derives from a name must fit the kernel's limit; a node's bridge must be one usable word.
 */
export function checkNames(c: CheckContext): void {
  const { t } = c;
  const hostNames = new Map<string, string>();
  const claimName = (path: PropertyKey[], name: string) => {
    const prior = hostNames.get(name);
    if (prior) c.at(path, `name "${name}" is already used by ${prior}`);
    else hostNames.set(name, fieldName(path));
  };
  t.routers.forEach((r, i) => claimName(['routers', i, 'name'], r.name));
  t.nodes.forEach((n, i) => claimName(['nodes', i, 'name'], n.name));
  t.clients.forEach((cl, i) => claimName(['clients', i, 'name'], cl.name));
  t.pods.forEach((p, i) => claimName(['pods', i, 'name'], p.name));

  for (const { path, ifname } of interfaceNames(t)) {
    if (ifname.length > IFNAMSIZ) c.at(path, `the interface name "${ifname}" derived from it is ${ifname.length} characters; the kernel allows ${IFNAMSIZ}`);
  }

  // A node's bridge is created next to the node's eth0, lo and its pods' veths, by a line of an
  // ip batch: it must be one word and must not take a name the lab already uses there.
  t.nodes.forEach((n, i) => {
    const taken = new Set(['lo', HOST_IFNAME, ...(n.interfaces ?? []).map((_, j) => extraIfname(j + 1)), ...t.pods.filter((p) => p.node === n.name).map((p) => podVethName(p.name))]);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(n.bridge)) {
      c.at(['nodes', i, 'bridge'], `"${n.bridge}" is not a usable interface name (letters, digits, "_", "." and "-")`);
    } else if (taken.has(n.bridge)) {
      c.at(['nodes', i, 'bridge'], `"${n.bridge}" is already an interface the lab creates on node "${n.name}"`);
    }
  });
}

/** Every interface name derived from a user-chosen name, with the field it comes from. */
function interfaceNames(t: Topology): { path: PropertyKey[]; ifname: string }[] {
  const out: { path: PropertyKey[]; ifname: string }[] = [];
  t.nodes.forEach((n, i) => {
    out.push({ path: ['nodes', i, 'bridge'], ifname: n.bridge });
    out.push({ path: ['nodes', i, 'name'], ifname: routerPortName(n.name) });
    (n.interfaces ?? []).forEach((_, j) => out.push({ path: ['nodes', i, 'interfaces', j], ifname: extraRouterPortName(n.name, j + 1) }));
  });
  t.clients.forEach((c, i) => out.push({ path: ['clients', i, 'name'], ifname: routerPortName(c.name) }));
  t.routers.forEach((r, i) => r.interfaces.forEach((iface, j) => out.push({ path: ['routers', i, 'interfaces', j, 'network'], ifname: networkBridgeName(iface.network) })));
  t.pods.forEach((p, i) => out.push({ path: ['pods', i, 'name'], ifname: podVethName(p.name) }));
  return out;
}
