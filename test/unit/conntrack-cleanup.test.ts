import { describe, expect, it } from 'vitest';
import { filterArgs, filterMatches, staleUdpFilters, udpFrontends, type ConntrackFlow, type ReconcileOptions } from '../../lab/plan/kube-proxy/conntrack-cleanup.js';
import { topologySchema, type Topology, type TopologyInput } from '../../lab/topology/schema.js';

/**
 * kube-proxy's conntrack reconciler, checked against the cases of upstream's own
 * pkg/proxy/conntrack/cleanup_test.go (v1.33+, endpoint ports compared): TestCleanStaleEntries,
 * TestServiceWithoutEndpoints, TestFilterForIPPortNAT / TestFilterForPortNAT. The lab has no
 * SCTP, so upstream's SCTP entries stand in as a second non-UDP protocol only.
 */
const CLUSTER_IP = '172.30.1.1';
const EXTERNAL_IP = '192.168.99.100';
const LB_IP = '1.2.3.4';
const SERVING = '10.240.0.4';
const NOT_SERVING = '10.240.1.5';
const DELETED = '10.240.2.6';
const OLD_ENDPOINT_PORT = 8080;
const ENDPOINT_PORT = 9090;
const SERVICE_PORT = 8000;
const NODE_PORT = 32000;
const NON_SERVICE_PORT = 3000;

/** upstream's test Service: a TCP and a UDP port (both 8000), NodePort 32000 on the UDP one, an external IP and an LB IP. */
function world(endpointsSelected = true): Topology {
  return topologySchema.parse({
    lab: 'upstream',
    cluster: { podCIDR: '10.240.0.0/12', serviceCIDR: '172.30.0.0/16' },
    networks: [{ name: 'nodes', subnet: '192.168.0.0/24' }],
    nodes: [{ name: 'test-worker', network: 'nodes', address: '192.168.0.2', podCIDR: '10.240.0.0/24' }],
    pods: [
      { name: 'serving', node: 'test-worker', address: SERVING, labels: { app: endpointsSelected ? 'cleanup-test' : 'non-existing-service' } },
      { name: 'not-serving', node: 'test-worker', address: NOT_SERVING, labels: { app: endpointsSelected ? 'cleanup-test' : 'non-existing-service' }, ready: false },
    ],
    services: [
      {
        name: 'cleanup-test',
        namespace: 'test',
        type: 'LoadBalancer',
        clusterIP: CLUSTER_IP,
        externalIPs: [EXTERNAL_IP],
        loadBalancerIPs: [LB_IP],
        selector: { app: 'cleanup-test' },
        ports: [
          { name: 'test-tcp', protocol: 'TCP', port: SERVICE_PORT, targetPort: ENDPOINT_PORT, nodePort: 32001 },
          { name: 'test-udp', protocol: 'UDP', port: SERVICE_PORT, targetPort: ENDPOINT_PORT, nodePort: NODE_PORT },
        ],
      },
    ],
  } satisfies TopologyInput);
}

const flow = (protocol: string, origDst: string, dport: number, replySrc: string, sport: number): ConntrackFlow => ({ protocol, original: { dst: origDst, dport }, reply: { src: replySrc, sport } });

/** The entries left after deleting with every filter, as the kernel's filtered delete leaves them. */
function afterCleanup(t: Topology, entries: ConntrackFlow[], opts?: ReconcileOptions): ConntrackFlow[] {
  const filters = staleUdpFilters(udpFrontends(t, opts), entries);
  return entries.filter((e) => !filters.some((f) => filterMatches(f, e)));
}

describe('conntrack reconciler (upstream cleanup_test.go)', () => {
  it('TestCleanStaleEntries: UDP entries to a frontend whose reply is no serving endpoint ip:port go, all others stay', () => {
    const before: ConntrackFlow[] = [];
    const expected: ConntrackFlow[] = [];
    // The serving endpoint changed its port: entries replied from its old port are stale.
    for (const dst of [CLUSTER_IP, LB_IP, EXTERNAL_IP]) before.push(flow('udp', dst, SERVICE_PORT, SERVING, OLD_ENDPOINT_PORT));
    for (const ep of [SERVING, NOT_SERVING, DELETED]) {
      for (const proto of ['tcp', 'udp', 'sctp']) {
        for (const dst of [CLUSTER_IP, LB_IP, EXTERNAL_IP]) {
          for (const port of [SERVICE_PORT, NON_SERVICE_PORT]) {
            const e = flow(proto, dst, port, ep, ENDPOINT_PORT);
            before.push(e);
            if (!(proto === 'udp' && port === SERVICE_PORT && ep !== SERVING)) expected.push(e);
          }
        }
        // *:NodePort (upstream leaves the original destination empty: any address)
        const e = flow(proto, '', NODE_PORT, ep, ENDPOINT_PORT);
        before.push(e);
        if (!(proto === 'udp' && ep !== SERVING)) expected.push(e);
      }
    }
    // Entries without DNAT (no REJECT rule yet): the reply comes from the service IP itself.
    for (const ip of [CLUSTER_IP, LB_IP, EXTERNAL_IP]) {
      for (const port of [SERVICE_PORT, NON_SERVICE_PORT]) {
        const e = flow('udp', ip, port, ip, 0);
        before.push(e);
        if (port !== SERVICE_PORT) expected.push(e);
      }
    }
    const left = afterCleanup(world(), before);
    expect(left).toEqual(expected);
    expect(before.length - left.length).toBe(3 + 3 * 2 + 2 + 3); // old port, not-serving and deleted (3 IPs + NodePort each), undNATed
  });

  it('TestServiceWithoutEndpoints: v1.34 leaves the entries of a port with no serving endpoint alone', () => {
    const entries = [flow('udp', EXTERNAL_IP, SERVICE_PORT, SERVING, ENDPOINT_PORT), flow('udp', EXTERNAL_IP, SERVICE_PORT, DELETED, ENDPOINT_PORT)];
    expect(afterCleanup(world(false), entries)).toEqual(entries);
  });

  it('kubernetes PR 139629 (after v1.34): a port with no serving endpoint has every entry to its frontends cleaned', () => {
    const entries = [flow('udp', EXTERNAL_IP, SERVICE_PORT, SERVING, ENDPOINT_PORT), flow('udp', CLUSTER_IP, SERVICE_PORT, DELETED, ENDPOINT_PORT), flow('udp', CLUSTER_IP, NON_SERVICE_PORT, DELETED, ENDPOINT_PORT)];
    expect(afterCleanup(world(false), entries, { withoutEndpoints: true })).toEqual([entries[2]]);
  });

  it('a serving terminating endpoint is serving: its entries stay', () => {
    const t = world();
    const terminating: Topology = { ...t, pods: t.pods.map((p) => (p.name === 'serving' ? { ...p, terminating: true } : p)) };
    const entries = [flow('udp', CLUSTER_IP, SERVICE_PORT, SERVING, ENDPOINT_PORT)];
    expect(afterCleanup(terminating, entries)).toEqual(entries);
  });

  it('TestFilterForIPPortNAT / TestFilterForPortNAT: the conntrack -D filters name the original destination and the reply source ip:port', () => {
    const filters = staleUdpFilters(udpFrontends(world()), [flow('udp', CLUSTER_IP, SERVICE_PORT, DELETED, ENDPOINT_PORT), flow('udp', '192.168.0.2', NODE_PORT, DELETED, ENDPOINT_PORT)]);
    expect(filters.map(filterArgs)).toEqual([
      ['-D', '-p', 'udp', '--orig-dst', CLUSTER_IP, '--orig-port-dst', '8000', '--reply-src', DELETED, '--reply-port-src', '9090'],
      ['-D', '-p', 'udp', '--orig-port-dst', '32000', '--reply-src', DELETED, '--reply-port-src', '9090'],
    ]);
  });
});
