import { cidrContains } from '../../util/ipv4.js';
import { reservedRange, selects } from '../relations.js';
import type { CheckContext } from './context.js';
import { nodePortRange } from './kube-proxy.js';
import { targetPortOf } from '../../plan/endpoints.js';

export { NODE_PORT_RANGE } from './kube-proxy.js';

/**
 * Services: unique, their IPs inside the service range (load balancer IPs inside the lab), ports
 * named and node ports free, each selecting at least one pod; cluster DNS served by a DNS pod.
 */
export function checkServices(c: CheckContext): void {
  const { t } = c;
  const serviceKeys = new Set<string>();
  const nodePorts = new Map<string, string>();
  const NODE_PORT_RANGE = nodePortRange(t);
  t.services.forEach((s, i) => {
    const key = `${s.namespace}/${s.name}`;
    if (serviceKeys.has(key)) c.at(['services', i, 'name'], `service ${key} is defined twice`);
    serviceKeys.add(key);
    const ip = c.ipAt(['services', i, 'clusterIP'], s.clusterIP);
    if (ip !== undefined && c.serviceRange && !cidrContains(c.serviceRange, ip)) {
      c.at(['services', i, 'clusterIP'], `${s.clusterIP} is not inside cluster.serviceCIDR ${t.cluster.serviceCIDR}`);
    }
    if (ip !== undefined) c.claimAddress(['services', i, 'clusterIP'], s.clusterIP);
    // A Service without endpoints from the start is a typo in a label, not a lesson: verify would fail every step.
    const selector = Object.entries(s.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
    // No selector at all says it: endpoints are managed elsewhere, here none, and its traffic is rejected.
    if (s.selector !== undefined && !t.pods.some((p) => selects(s, p))) {
      c.at(['services', i, 'selector'], selector ? `service ${key} selects no pod: no pod has the labels ${selector}` : `service ${key} has an empty selector, so it selects no pod`);
    }
    if (s.allocateLoadBalancerNodePorts !== undefined && s.type !== 'LoadBalancer') {
      c.at(['services', i, 'allocateLoadBalancerNodePorts'], `may only be used when type is LoadBalancer (this one is ${s.type})`);
    }
    if (s.loadBalancerIPs.length > 0 && s.type !== 'LoadBalancer') {
      c.at(['services', i, 'loadBalancerIPs'], `only a service of type LoadBalancer has load balancer IPs (this one is ${s.type})`);
    }
    s.loadBalancerIPs.forEach((lb, j) => {
      if (c.ipAt(['services', i, 'loadBalancerIPs', j], lb) === undefined) return;
      c.claimAddress(['services', i, 'loadBalancerIPs', j], lb);
      // One outside the lab's ranges is routed to the nodes (relations.ts serviceIPRoutes); a reserved one cannot be.
      const reserved = reservedRange(lb);
      if (reserved) c.at(['services', i, 'loadBalancerIPs', j], `${lb} lies in the reserved range ${reserved}, which no host routes as a unicast address`);
    });
    s.externalIPs.forEach((ext, j) => {
      if (c.ipAt(['services', i, 'externalIPs', j], ext) === undefined) return;
      const reserved = reservedRange(ext);
      if (reserved) c.at(['services', i, 'externalIPs', j], `${ext} lies in the reserved range ${reserved}, which no host routes as a unicast address`);
    });
    if (s.loadBalancerSourceRanges.length > 0 && s.type !== 'LoadBalancer') {
      c.at(['services', i, 'loadBalancerSourceRanges'], `only a service of type LoadBalancer has source ranges (this one is ${s.type})`);
    }
    s.loadBalancerSourceRanges.forEach((r, j) => c.cidrAt(['services', i, 'loadBalancerSourceRanges', j], r));
    if (s.healthCheckNodePort !== undefined) {
      const hc = s.healthCheckNodePort;
      // Under Cluster policy kube-proxy ignores it (no health check server, no rule), as upstream's
      // TestOverallIPTablesRules has it; the port is still taken.
      if (s.type !== 'LoadBalancer') {
        c.at(['services', i, 'healthCheckNodePort'], 'only a LoadBalancer service has a health check node port (kube-proxy serves it under externalTrafficPolicy Local, ignores it under Cluster)');
      } else if (hc < NODE_PORT_RANGE.min || hc > NODE_PORT_RANGE.max) {
        c.at(['services', i, 'healthCheckNodePort'], `${hc} is outside the NodePort range ${NODE_PORT_RANGE.min}-${NODE_PORT_RANGE.max}`);
      } else if (nodePorts.has(`${hc}/TCP`)) {
        c.at(['services', i, 'healthCheckNodePort'], `${hc} is already used by ${nodePorts.get(`${hc}/TCP`)}`);
      } else nodePorts.set(`${hc}/TCP`, `${key} health check`);
    }
    const portNames = new Set<string>();
    s.ports.forEach((p, j) => {
      if (s.ports.length > 1 && !p.name) c.at(['services', i, 'ports', j, 'name'], 'a service with several ports must name each one');
      if (portNames.has(p.name)) c.at(['services', i, 'ports', j, 'name'], `port name "${p.name}" is used twice`);
      portNames.add(p.name);
      // A name no selected pod declares (with this protocol) gives the port no endpoint at all: a typo, as a selector matching nothing is.
      if (typeof p.targetPort === 'string' && s.selector !== undefined && t.pods.some((pod) => selects(s, pod)) && !t.pods.some((pod) => selects(s, pod) && targetPortOf(pod, p) !== undefined)) {
        c.at(['services', i, 'ports', j, 'targetPort'], `no pod that service ${key} selects has a ${p.protocol} port named "${p.targetPort}" (pods[].ports), so this port would have no endpoint`);
      }
      if (p.nodePort === undefined) {
        const optional = s.type === 'LoadBalancer' && s.allocateLoadBalancerNodePorts === false;
        if (s.type !== 'ClusterIP' && !optional) c.at(['services', i, 'ports', j, 'nodePort'], `is required for type ${s.type} (the lab does not pick one at random${s.type === 'LoadBalancer' ? '; allocateLoadBalancerNodePorts: false leaves it out' : ''})`);
        return;
      }
      if (s.type === 'ClusterIP') c.at(['services', i, 'ports', j, 'nodePort'], 'a ClusterIP service has no nodePort');
      if (p.nodePort < NODE_PORT_RANGE.min || p.nodePort > NODE_PORT_RANGE.max) {
        c.at(['services', i, 'ports', j, 'nodePort'], `${p.nodePort} is outside the NodePort range ${NODE_PORT_RANGE.min}-${NODE_PORT_RANGE.max}`);
      }
      // A node port is taken per protocol: 53/UDP and 53/TCP may share a number.
      const portKey = `${p.nodePort}/${p.protocol}`;
      const prior = nodePorts.get(portKey);
      if (prior) c.at(['services', i, 'ports', j, 'nodePort'], `${p.nodePort} is already used by ${prior}`);
      nodePorts.set(portKey, key);
    });
  });

  // kubelet's clusterDNS names a Service IP; the lab needs a service there, served by a DNS pod.
  if (t.cluster.dns !== undefined) {
    const dnsService = t.services.find((s) => s.clusterIP === t.cluster.dns);
    if (!dnsService) {
      c.at(['cluster', 'dns'], `${t.cluster.dns} is not the clusterIP of any service (it should be the cluster DNS service, like kube-dns)`);
    } else if (!t.pods.some((p) => p.workload === 'dns' && selects(dnsService, p))) {
      c.at(['cluster', 'dns'], `service ${dnsService.namespace}/${dnsService.name} at ${t.cluster.dns} selects no pod with workload: dns`);
    }
  }
  t.pods.forEach((p, i) => {
    // Container port names are unique within a pod (the API's validation), so a name resolves to one port.
    const named = new Set<string>();
    (p.ports ?? []).forEach((cp, j) => {
      if (named.has(cp.name)) c.at(['pods', i, 'ports', j, 'name'], `port name "${cp.name}" is used twice in pod ${p.name}`);
      named.add(cp.name);
    });
    if (p.workload !== 'dns') return;
    if (!t.services.some((s) => selects(s, p))) c.at(['pods', i, 'workload'], 'a dns pod needs a service that selects it (its targetPorts are where it listens)');
  });
}
