import { nodePortIPs, proxySettings } from '../../plan/kube-proxy/settings.js';
import type { Topology } from '../schema.js';
import type { CheckContext } from './context.js';

/** kube-apiserver's default --service-node-port-range. */
export const NODE_PORT_RANGE = { min: 30000, max: 32767 } as const;

/** cluster.serviceNodePortRange as numbers (the default when unset or malformed; a malformed one is reported by checkKubeProxy). */
export function nodePortRange(t: Pick<Topology, 'cluster'>): { min: number; max: number } {
  const m = /^(\d+)-(\d+)$/.exec(t.cluster.serviceNodePortRange ?? '');
  const [min, max] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  return min >= 1 && max <= 65535 && min <= max ? { min, max } : NODE_PORT_RANGE;
}

/**
 * kube-proxy's settings beyond its mode, and the apiserver's NodePort range: each option only
 * where its mode uses it, CIDRs that parse, node port addresses that match some node.
 */
export function checkKubeProxy(c: CheckContext): void {
  const { t } = c;
  const k = t.kubeProxy;
  const range = t.cluster.serviceNodePortRange;
  if (range !== undefined && nodePortRange(t) === NODE_PORT_RANGE && range !== `${NODE_PORT_RANGE.min}-${NODE_PORT_RANGE.max}`) {
    c.at(['cluster', 'serviceNodePortRange'], `${range} is not a port range (1-65535, the first port not above the last)`);
  }
  if (k.localhostNodePorts === true && k.mode === 'nftables') {
    c.at(['kubeProxy', 'localhostNodePorts'], 'nftables mode has no localhost NodePorts (it is --iptables-localhost-nodeports); leave it out or use mode iptables');
  }
  const detect = k.detectLocal ?? {};
  if (detect.bridgeInterface !== undefined && k.detectLocalMode !== 'BridgeInterface') {
    c.at(['kubeProxy', 'detectLocal', 'bridgeInterface'], 'is used only with detectLocalMode: BridgeInterface');
  }
  if (detect.interfaceNamePrefix !== undefined && k.detectLocalMode !== 'InterfaceNamePrefix') {
    c.at(['kubeProxy', 'detectLocal', 'interfaceNamePrefix'], 'is used only with detectLocalMode: InterfaceNamePrefix');
  }
  if (detect.bridgeInterface !== undefined) {
    const bridges = new Set(t.nodes.map((n) => n.bridge));
    if (!bridges.has(detect.bridgeInterface)) c.at(['kubeProxy', 'detectLocal', 'bridgeInterface'], `no node has a bridge named ${detect.bridgeInterface} (the nodes' bridges: ${[...bridges].join(', ')})`);
  }
  const entries = k.nodePortAddresses ?? [];
  let parses = true;
  entries.forEach((e, i) => {
    if (e !== 'primary' && !c.cidrAt(['kubeProxy', 'nodePortAddresses', i], e)) parses = false;
  });
  if (parses && entries.length > 0) {
    const s = proxySettings(t);
    const open = t.nodes.some((n) => (nodePortIPs(s, n) ?? ['any']).some((ip) => ip !== '127.0.0.1' || s.localhostNodePorts));
    if (!open) c.at(['kubeProxy', 'nodePortAddresses'], `${entries.join(', ')} matches no address of any node, so no NodePort would answer anywhere`);
  }
}
