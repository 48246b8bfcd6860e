import type { InputProblem } from '../errors.js';
import { cidrContains, cidrsOverlap, firstHost, isNetworkOrBroadcast, parseCidr, parseIPv4, type Cidr } from '../util/ipv4.js';
import type { YamlFile } from '../util/yaml-file.js';
import { HOST_IFNAME, interfaceNames, podVethName } from './names.js';
import type { Pod, Service, Topology } from './schema.js';

const selectsPod = (s: Service, p: Pod) => Object.keys(s.selector).length > 0 && Object.entries(s.selector).every(([k, v]) => p.labels[k] === v);

export const NODE_PORT_RANGE = { min: 30000, max: 32767 } as const;
const IFNAMSIZ = 15; // the kernel refuses longer interface names

/**
 * Checks that need the whole file: names and addresses that must be unique,
 * addresses inside their subnets, references that must resolve. Returns every
 * problem at once so a user fixes the file in one go.
 */
export function checkTopology(t: Topology, file: YamlFile): InputProblem[] {
  const problems: InputProblem[] = [];
  const at = (path: PropertyKey[], message: string) => problems.push(file.problem(path, message));

  const cidrAt = (path: PropertyKey[], text: string): Cidr | undefined => {
    const c = parseCidr(text);
    if (!c) at(path, `${text} is not a valid network (host bits set, or a part over 255)`);
    return c;
  };
  const ipAt = (path: PropertyKey[], text: string): number | undefined => {
    const a = parseIPv4(text);
    if (a === undefined) at(path, `${text} is not a valid IPv4 address`);
    return a;
  };

  // Names: every host becomes a namespace <lab>-<name>, so they share one space.
  const hostNames = new Map<string, string>();
  const claimName = (path: PropertyKey[], name: string) => {
    const prior = hostNames.get(name);
    if (prior) at(path, `name "${name}" is already used by ${prior}`);
    else hostNames.set(name, path.join('.'));
  };
  t.routers.forEach((r, i) => claimName(['routers', i, 'name'], r.name));
  t.nodes.forEach((n, i) => claimName(['nodes', i, 'name'], n.name));
  t.clients.forEach((c, i) => claimName(['clients', i, 'name'], c.name));
  t.pods.forEach((p, i) => claimName(['pods', i, 'name'], p.name));

  // Addresses: one owner each.
  const owners = new Map<string, string>();
  const claimAddress = (path: PropertyKey[], address: string) => {
    const prior = owners.get(address);
    if (prior) at(path, `address ${address} is already used by ${prior}`);
    else owners.set(address, path.map(String).join('.'));
  };

  const labRanges = [...t.networks.map((n) => n.subnet), t.cluster.podCIDR, t.cluster.serviceCIDR].map((c) => parseCidr(c)).filter((c): c is Cidr => c !== undefined);
  const insideLab = (target: string) => {
    const [addr, len] = target.split('/');
    const a = parseIPv4(addr!);
    const prefix = len === undefined ? 32 : Number(len);
    return a !== undefined && labRanges.some((r) => r.prefix <= prefix && cidrContains(r, a));
  };

  const podRange = cidrAt(['cluster', 'podCIDR'], t.cluster.podCIDR);
  const serviceRange = cidrAt(['cluster', 'serviceCIDR'], t.cluster.serviceCIDR);
  if (podRange && serviceRange && cidrsOverlap(podRange, serviceRange)) {
    at(['cluster', 'serviceCIDR'], `${t.cluster.serviceCIDR} overlaps cluster.podCIDR ${t.cluster.podCIDR}`);
  }

  const networks = new Map<string, Cidr | undefined>();
  t.networks.forEach((n, i) => {
    if (networks.has(n.name)) at(['networks', i, 'name'], `network "${n.name}" is defined twice`);
    const c = cidrAt(['networks', i, 'subnet'], n.subnet);
    networks.set(n.name, c);
    if (!c) return;
    for (const [other, oc] of networks) {
      if (other !== n.name && oc && cidrsOverlap(c, oc)) at(['networks', i, 'subnet'], `${n.subnet} overlaps network "${other}"`);
    }
    if (podRange && cidrsOverlap(c, podRange)) at(['networks', i, 'subnet'], `${n.subnet} overlaps cluster.podCIDR`);
    if (serviceRange && cidrsOverlap(c, serviceRange)) at(['networks', i, 'subnet'], `${n.subnet} overlaps cluster.serviceCIDR`);
  });

  const onNetwork = (path: PropertyKey[], network: string, address: string) => {
    if (!networks.has(network)) {
      at([...path, 'network'], `no network named "${network}" (known: ${[...networks.keys()].join(', ')})`);
      return;
    }
    const subnet = networks.get(network);
    const a = ipAt([...path, 'address'], address);
    if (a === undefined || !subnet) return;
    if (!cidrContains(subnet, a)) at([...path, 'address'], `${address} is not inside network "${network}" (${subnet.text})`);
    else if (isNetworkOrBroadcast(subnet, a)) at([...path, 'address'], `${address} is the network or broadcast address of ${subnet.text}`);
    claimAddress([...path, 'address'], address);
  };

  t.routers.forEach((r, i) => {
    const seen = new Set<string>();
    r.interfaces.forEach((iface, j) => {
      if (seen.has(iface.network)) at(['routers', i, 'interfaces', j, 'network'], `router already has an interface on "${iface.network}"`);
      seen.add(iface.network);
      onNetwork(['routers', i, 'interfaces', j], iface.network, iface.address);
    });
    r.routes.forEach((route, j) => {
      const to = route.to.includes('/') ? parseCidr(route.to) : parseIPv4(route.to);
      if (to === undefined) at(['routers', i, 'routes', j, 'to'], `${route.to} is not a valid address or network`);
      else if (!insideLab(route.to)) at(['routers', i, 'routes', j, 'to'], `${route.to} lies outside the lab's networks, pod and service ranges: no lab route may lead out of the lab`);
      const hops = Array.isArray(route.via) ? route.via : [route.via];
      hops.forEach((hop) => {
        const h = parseIPv4(hop);
        const reachable = h !== undefined && r.interfaces.some((iface) => {
          const s = networks.get(iface.network);
          return s !== undefined && cidrContains(s, h);
        });
        if (!reachable) at(['routers', i, 'routes', j, 'via'], `next hop ${hop} is not on any network of router "${r.name}"`);
      });
    });
  });

  // Each L2 network lives as a bridge inside the router that serves it.
  t.networks.forEach((n, i) => {
    const servers = t.routers.filter((r) => r.interfaces.some((iface) => iface.network === n.name));
    if (servers.length === 0) at(['networks', i, 'name'], `no router has an interface on network "${n.name}"; a router holds each network's segment`);
    if (servers.length > 1) at(['networks', i, 'name'], `network "${n.name}" is served by several routers (${servers.map((r) => r.name).join(', ')}); the lab supports one`);
  });

  const podCidrs = new Map<string, Cidr>();
  t.nodes.forEach((n, i) => {
    onNetwork(['nodes', i], n.network, n.address);
    const c = cidrAt(['nodes', i, 'podCIDR'], n.podCIDR);
    if (!c) return;
    if (podRange && !(cidrContains(podRange, c.network) && c.prefix >= podRange.prefix)) {
      at(['nodes', i, 'podCIDR'], `${n.podCIDR} is not inside cluster.podCIDR ${t.cluster.podCIDR}`);
    }
    for (const [other, oc] of podCidrs) {
      if (cidrsOverlap(c, oc)) at(['nodes', i, 'podCIDR'], `${n.podCIDR} overlaps the podCIDR of node "${other}"`);
    }
    podCidrs.set(n.name, c);
    claimAddress(['nodes', i, 'podCIDR'], firstHost(c));
  });

  t.clients.forEach((c, i) => onNetwork(['clients', i], c.network, c.address));

  t.pods.forEach((p, i) => {
    const node = t.nodes.find((n) => n.name === p.node);
    if (!node) {
      at(['pods', i, 'node'], `no node named "${p.node}" (known: ${t.nodes.map((n) => n.name).join(', ')})`);
      return;
    }
    const a = ipAt(['pods', i, 'address'], p.address);
    const c = podCidrs.get(node.name);
    if (a === undefined || !c) return;
    if (!cidrContains(c, a)) at(['pods', i, 'address'], `${p.address} is not inside the podCIDR of node "${node.name}" (${c.text})`);
    else if (isNetworkOrBroadcast(c, a)) at(['pods', i, 'address'], `${p.address} is the network or broadcast address of ${c.text}`);
    else if (p.address === firstHost(c)) at(['pods', i, 'address'], `${p.address} belongs to ${node.name}'s bridge ${node.bridge}`);
    else claimAddress(['pods', i, 'address'], p.address);
  });

  const serviceKeys = new Set<string>();
  const nodePorts = new Map<string, string>();
  t.services.forEach((s, i) => {
    const key = `${s.namespace}/${s.name}`;
    if (serviceKeys.has(key)) at(['services', i, 'name'], `service ${key} is defined twice`);
    serviceKeys.add(key);
    const ip = ipAt(['services', i, 'clusterIP'], s.clusterIP);
    if (ip !== undefined && serviceRange && !cidrContains(serviceRange, ip)) {
      at(['services', i, 'clusterIP'], `${s.clusterIP} is not inside cluster.serviceCIDR ${t.cluster.serviceCIDR}`);
    }
    if (ip !== undefined) claimAddress(['services', i, 'clusterIP'], s.clusterIP);
    if (s.loadBalancerIPs.length > 0 && s.type !== 'LoadBalancer') {
      at(['services', i, 'loadBalancerIPs'], `only a service of type LoadBalancer has load balancer IPs (this one is ${s.type})`);
    }
    s.loadBalancerIPs.forEach((lb, j) => {
      if (ipAt(['services', i, 'loadBalancerIPs', j], lb) === undefined) return;
      claimAddress(['services', i, 'loadBalancerIPs', j], lb);
      // Hosts reach the LB IP through routes to the lab's own prefixes; one outside them is unreachable.
      if (!insideLab(lb)) at(['services', i, 'loadBalancerIPs', j], `${lb} lies outside the lab's networks, pod and service ranges; pick one inside a network (e.g. the nodes' subnet)`);
    });
    s.externalIPs.forEach((ext, j) => {
      if (ipAt(['services', i, 'externalIPs', j], ext) === undefined) return;
      if (!insideLab(ext)) at(['services', i, 'externalIPs', j], `${ext} lies outside the lab's networks, pod and service ranges; pick one the router can send to a node`);
    });
    if (s.loadBalancerSourceRanges.length > 0 && s.type !== 'LoadBalancer') {
      at(['services', i, 'loadBalancerSourceRanges'], `only a service of type LoadBalancer has source ranges (this one is ${s.type})`);
    }
    s.loadBalancerSourceRanges.forEach((r, j) => cidrAt(['services', i, 'loadBalancerSourceRanges', j], r));
    if (s.healthCheckNodePort !== undefined) {
      const hc = s.healthCheckNodePort;
      if (s.type !== 'LoadBalancer' || s.externalTrafficPolicy !== 'Local') {
        at(['services', i, 'healthCheckNodePort'], 'only a LoadBalancer service with externalTrafficPolicy Local has a health check node port');
      } else if (hc < NODE_PORT_RANGE.min || hc > NODE_PORT_RANGE.max) {
        at(['services', i, 'healthCheckNodePort'], `${hc} is outside the NodePort range ${NODE_PORT_RANGE.min}-${NODE_PORT_RANGE.max}`);
      } else if (nodePorts.has(`${hc}/TCP`)) {
        at(['services', i, 'healthCheckNodePort'], `${hc} is already used by ${nodePorts.get(`${hc}/TCP`)}`);
      } else nodePorts.set(`${hc}/TCP`, `${key} health check`);
    }
    const portNames = new Set<string>();
    s.ports.forEach((p, j) => {
      if (s.ports.length > 1 && !p.name) at(['services', i, 'ports', j, 'name'], 'a service with several ports must name each one');
      if (portNames.has(p.name)) at(['services', i, 'ports', j, 'name'], `port name "${p.name}" is used twice`);
      portNames.add(p.name);
      if (p.nodePort === undefined) {
        if (s.type !== 'ClusterIP') at(['services', i, 'ports', j, 'nodePort'], `is required for type ${s.type} (the lab does not pick one at random)`);
        return;
      }
      if (s.type === 'ClusterIP') at(['services', i, 'ports', j, 'nodePort'], 'a ClusterIP service has no nodePort');
      if (p.nodePort < NODE_PORT_RANGE.min || p.nodePort > NODE_PORT_RANGE.max) {
        at(['services', i, 'ports', j, 'nodePort'], `${p.nodePort} is outside the NodePort range ${NODE_PORT_RANGE.min}-${NODE_PORT_RANGE.max}`);
      }
      // A node port is taken per protocol: 53/UDP and 53/TCP may share a number.
      const portKey = `${p.nodePort}/${p.protocol}`;
      const prior = nodePorts.get(portKey);
      if (prior) at(['services', i, 'ports', j, 'nodePort'], `${p.nodePort} is already used by ${prior}`);
      nodePorts.set(portKey, key);
    });
  });

  // kubelet's clusterDNS names a Service IP; the lab needs a service there, served by a DNS pod.
  if (t.cluster.dns !== undefined) {
    const dnsService = t.services.find((s) => s.clusterIP === t.cluster.dns);
    if (!dnsService) {
      at(['cluster', 'dns'], `${t.cluster.dns} is not the clusterIP of any service (it should be the cluster DNS service, like kube-dns)`);
    } else if (!t.pods.some((p) => p.workload === 'dns' && selectsPod(dnsService, p))) {
      at(['cluster', 'dns'], `service ${dnsService.namespace}/${dnsService.name} at ${t.cluster.dns} selects no pod with workload: dns`);
    }
  }
  t.pods.forEach((p, i) => {
    if (p.workload !== 'dns') return;
    if (!t.services.some((s) => selectsPod(s, p))) at(['pods', i, 'workload'], 'a dns pod needs a service that selects it (its targetPorts are where it listens)');
  });

  // Interface names the lab will create must fit the kernel's limit.
  for (const { path, ifname } of interfaceNames(t)) {
    if (ifname.length > IFNAMSIZ) {
      at(path, `the interface name "${ifname}" derived from it is ${ifname.length} characters; the kernel allows ${IFNAMSIZ}`);
    }
  }

  // A node's bridge is created next to the node's eth0, lo and its pods' veths, by a line of an
  // ip batch: it must be one word and must not take a name the lab already uses there.
  t.nodes.forEach((n, i) => {
    const taken = new Set(['lo', HOST_IFNAME, ...t.pods.filter((p) => p.node === n.name).map((p) => podVethName(p.name))]);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(n.bridge)) {
      at(['nodes', i, 'bridge'], `"${n.bridge}" is not a usable interface name (letters, digits, "_", "." and "-")`);
    } else if (taken.has(n.bridge)) {
      at(['nodes', i, 'bridge'], `"${n.bridge}" is already an interface the lab creates on node "${n.name}"`);
    }
  });
  return problems;
}
