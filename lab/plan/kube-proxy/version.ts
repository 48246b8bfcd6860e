/**
 * The upstream kube-proxy whose output the lab reproduces: rule shapes, names, hashes and
 * comments follow pkg/proxy/iptables/proxier.go and pkg/proxy/nftables/proxier.go of this
 * release, checked by test/unit/upstream-oracle.test.ts against upstream's own expected rules.
 */
export const KUBE_PROXY_VERSION = 'v1.34';

/** The first line `lab rules` prints: which kube-proxy, which mode, which node. */
export function rulesHeader(mode: 'iptables' | 'nftables', lab: string, node: string): string {
  const how = mode === 'nftables' ? 'nft list table ip kube-proxy' : 'iptables-save';
  return `# kube-proxy ${KUBE_PROXY_VERSION}, ${mode} mode, as kube-packet-lab writes it (lab ${lab}, node ${node}; ${how})`;
}
