import { HOST_IFNAME } from '../../topology/names.js';
import type { Service, ServicePort, Topology } from '../../topology/schema.js';
import { localhostNodePortsOn, proxySettings } from '../../plan/kube-proxy/settings.js';
import type { Step, WalkthroughPath } from '../walkthrough.js';
import { portLabel, untestable, type WayIn } from './ways-in.js';

/**
 * Localhost NodePorts (--iptables-localhost-nodeports, on by default for IPv4 in iptables mode):
 * a process on the node reaches 127.0.0.1:<nodePort>. kube-proxy's KUBE-SERVICES sends a
 * 127.0.0.1 destination to KUBE-NODEPORTS (nat OUTPUT), whose DNAT takes it to an endpoint; the
 * source 127.0.0.1 cannot leave the node, so it is masqueraded (KUBE-EXT's mark under Cluster;
 * under Local the "masquerade LOCAL traffic" rule, and a local source is short-circuited to the
 * cluster-wide endpoints), and the kernel routes it out only with route_localnet=1. nftables
 * mode accepts no localhost NodePorts, and neither does IPv6. Pure.
 */
export function localhostWaysIn(t: Topology, skipped: string[]): WayIn[] {
  // The ports waysIn tries (it says why it leaves the others out).
  return t.services.flatMap((service) => service.ports.flatMap((port) => (untestable(t, service, port) ? [] : localhostWays(t, service, port, skipped))));
}

function localhostWays(t: Topology, service: Service, port: ServicePort, skipped: string[]): WayIn[] {
  if (service.type === 'ClusterIP' || port.nodePort === undefined) return [];
  const settings = proxySettings(t);
  if (!settings.localhostNodePorts) return []; // nftables mode, or --iptables-localhost-nodeports=false
  const out: WayIn[] = [];
  // A local source: masqueraded, and any of the Service's endpoints may answer whatever the external policy says.
  const asLocal: Service = { ...service, externalTrafficPolicy: 'Cluster' };
  for (const node of t.nodes) {
    if (!localhostNodePortsOn(settings, node)) {
      skipped.push(`${portLabel(service, port)}: the localhost NodePort on ${node.name}: kubeProxy.nodePortAddresses leaves out 127.0.0.1`);
      continue;
    }
    out.push({ service: asLocal, port, entry: 'nodePort', from: node.name, fromAddress: '127.0.0.1', to: `127.0.0.1:${port.nodePort}`, nodes: [node], spreadByPorts: false, localhost: true });
  }
  return out;
}

/**
 * A localhost path as the wire can show it: the request and its reversed reply never cross an
 * interface the lab watches (DNAT happens before the packet leaves the node, the reply is turned
 * back before it is delivered), so the sender's own captures go; the DNAT, conntrack entry,
 * masqueraded source at the pod and the pod's answer prove it. Pure.
 */
export function localhostPath(way: WayIn, p: WalkthroughPath): WalkthroughPath {
  if (!way.localhost) return p;
  const own = `${way.from}:${HOST_IFNAME}`;
  const sent: Step = {
    step: '1',
    title: `${way.from} sends from 127.0.0.1 to ${way.to}: no captured packet carries 127.0.0.1 (translated and masqueraded before it leaves the node)`,
    expect: { never: '127.0.0.1' },
  };
  return { ...p, name: p.name.replace(' nodePort from ', ' localhost nodePort from '), steps: [sent, ...p.steps.filter((s) => s.at !== own)] };
}
