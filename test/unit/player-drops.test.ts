import { describe, expect, it } from 'vitest';
import { dropsAtHops } from '../../lab/picture/drop.js';
import type { Hop, PathHops } from '../../lab/picture/hops.js';
import { parseSave } from '../../lab/plan/kube-proxy/rules.js';
import { iptablesDropRule, nftDropRule } from '../../lab/verify/nat-rules.js';

/** Where the player draws a packet dead, and which rule verify names for a netfilter drop. */

const hop = (point: string, src = '10.241.0.50:40000', dst = '10.240.0.100:443'): Hop => ({ point, time: 0, src, dst, flags: 'S', changed: [] });
const outsider: PathHops = { request: [hop('outsider:eth0'), hop('router:br-clients'), hop('router:br-nodes'), hop('node1:eth0')], reply: [] };

describe('dropsAtHops', () => {
  it('puts the drop at the last hop, on the host where the packet stopped; drops on hosts it went on from are not its', () => {
    const at = dropsAtHops(outsider, [
      { reason: 'QUEUE_PURGE', host: 'web-1' },
      { reason: 'IP_INNOROUTES', host: 'router', device: 'br-nodes' },
      { reason: 'NETFILTER_DROP', host: 'node1', netns: 'lab-node1', device: 'eth0', rule: 'filter KUBE-PROXY-FIREWALL: -j DROP' },
    ], false);
    // The router forwarded it on (node1 saw it): its drop there was another packet's.
    expect(at).toEqual({ 3: { reason: 'NETFILTER_DROP', host: 'node1', netns: 'lab-node1', device: 'eth0', rule: 'filter KUBE-PROXY-FIREWALL: -j DROP' } });
    expect(dropsAtHops(outsider, [{ reason: 'IP_INNOROUTES', host: 'router' }, { reason: 'NOT_SPECIFIED', host: 'node2' }], false)).toEqual({ 3: { host: 'node1' } });
  });

  it('a drop on a host where no hop was captured goes after the last hop; a trace rule object is printed', () => {
    const short: PathHops = { request: [hop('outsider:eth0')], reply: [] };
    expect(dropsAtHops(short, [{ reason: 'NETFILTER_DROP', host: 'node1', direction: 'request', rule: { table: 'filter', chain: 'KUBE-EXTERNAL-SERVICES', rule: '-j DROP' } }], false)).toEqual({ 0: { reason: 'NETFILTER_DROP', host: 'node1', rule: 'filter KUBE-EXTERNAL-SERVICES: -j DROP', after: true } });
  });

  it('a reply-direction drop is indexed after the request hops', () => {
    const both: PathHops = { request: [hop('client:eth0'), hop('node1:eth0')], reply: [hop('node1:eth0', '10.240.0.100:443', '10.241.0.50:40000')] };
    expect(Object.keys(dropsAtHops(both, [{ reason: 'TCP_FLAGS', host: 'node1', direction: 'reply' }], true))).toEqual(['2']);
  });

  it('an unanswered request without a recorded drop is marked at its last hop, with no reason', () => {
    expect(dropsAtHops(outsider, [], false)).toEqual({ 3: { host: 'node1' } });
    expect(dropsAtHops(outsider, [], true)).toEqual({});
  });
});

describe('the rule of a netfilter drop', () => {
  const packet = { src: '10.241.0.50', dst: '10.240.0.100', dport: 443, proto: 'tcp', local: ['10.240.0.4'] };
  const save = (n: number) => `*filter
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
[${n}:${n * 60}] -A KUBE-PROXY-FIREWALL -d 10.240.0.100/32 -p tcp -m comment --comment "default/web:https traffic not accepted by KUBE-FW-X" -m tcp --dport 443 -j DROP
[5:300] -A KUBE-EXTERNAL-SERVICES -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 30080 -j DROP
[7:420] -A KUBE-PROXY-FIREWALL -d 10.240.0.101/32 -p tcp -m tcp --dport 443 -j DROP
COMMIT
`;
  it('iptables: the DROP whose counter rose during the run and whose match holds', () => {
    expect(iptablesDropRule(parseSave(save(3)).rules, parseSave(save(1)).rules, packet)).toBe('filter KUBE-PROXY-FIREWALL: -d 10.240.0.100/32 -p tcp -m tcp --dport 443 -j DROP');
    // No counter rose: nothing is named (a guess would mislead).
    expect(iptablesDropRule(parseSave(save(1)).rules, parseSave(save(1)).rules, packet)).toBeUndefined();
  });

  const nft = `table ip kube-proxy {
	map firewall-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "destinations that are subject to LoadBalancerSourceRanges"
		elements = { 10.240.0.100 . tcp . 443 : goto firewall-ABC-default/web/tcp/https }
	}
	map no-endpoint-nodeports {
		type inet_proto . inet_service : verdict
		elements = { tcp . 30080 : drop }
	}
	chain firewall-ABC-default/web/tcp/https {
		ip saddr != { 10.241.0.0/28 } drop
	}
}`;
  it('nftables: the firewall chain its address leads to, or the no-endpoint element of its port', () => {
    expect(nftDropRule(nft, packet)).toBe('firewall-ABC-default/web/tcp/https: ip saddr != { 10.241.0.0/28 } drop');
    expect(nftDropRule(nft, { ...packet, dst: '10.240.0.4', dport: 30080 })).toBe('map no-endpoint-nodeports: tcp . 30080 : drop');
    expect(nftDropRule(nft, { ...packet, dst: '10.240.0.9', dport: 30080 })).toBeUndefined();
  });
});
