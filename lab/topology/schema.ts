import * as z from 'zod';
import { NAME_MAX, NAME_PATTERN, NAME_RULE } from './names.js';

/**
 * The topology file format. Every object is strict: an unknown key is an error,
 * because a typo ("adress") silently ignored would build a different lab.
 */

const name = z.string().regex(NAME_PATTERN, NAME_RULE).max(NAME_MAX, `must be at most ${NAME_MAX} characters`);

/**
 * Limits: a lab is bounded so that everything `up`, its rollback and `down` do stays batched and
 * finite (docs/guarantees.md). A thousand pods per lab is the size the lab is built for.
 */
export const LIMITS = {
  networks: 16,
  routers: 8,
  interfacesPerRouter: 16,
  interfacesPerNode: 3,
  routesPerRouter: 64,
  nextHops: 16,
  nodes: 32,
  clients: 32,
  pods: 1024,
  labelsPerPod: 16,
  taintsPerNode: 16,
  services: 1024,
  portsPerService: 16,
  loadBalancerIPs: 8,
  sourceRanges: 16,
  labelLength: 63,
  description: 1000,
  path: 255,
} as const;
const most = <T extends z.ZodArray<z.ZodType>>(a: T, n: number, what: string) => a.max(n, `at most ${n} ${what} (the lab's limit)`);

const ipv4 = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'must be an IPv4 address like 10.240.0.4');
const cidr = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'must be an IPv4 CIDR like 10.244.0.0/24');
/** IPv6, for dual-stack labs (docs/dualstack.md): RFC 5952 form, as the kernel prints it (checked in checks/families.ts). */
const ipv6 = z.string().regex(/^[0-9a-f:]+$/, 'must be an IPv6 address in RFC 5952 form like fd00:10:240::4');
const cidr6 = z.string().regex(/^[0-9a-f:]+\/\d{1,3}$/, 'must be an IPv6 CIDR in RFC 5952 form like fd00:10:244::/64');
const port = z.number().int().min(1).max(65535);
/**
 * A named port (IANA_SVC_NAME, as the API validates a container port's name and a targetPort
 * string): at most 15 lower-case letters, digits and '-', at least one letter, no '-' at either
 * end and no '--'.
 */
export const portName = z
  .string()
  .max(15, 'must be at most 15 characters (IANA_SVC_NAME)')
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, "must be lower-case letters, digits and '-', not starting or ending with '-' (IANA_SVC_NAME)")
  .refine((n) => /[a-z]/.test(n), 'must contain at least one letter (IANA_SVC_NAME)')
  .refine((n) => !n.includes('--'), "must not contain '--' (IANA_SVC_NAME)");
const protocol = z.enum(['TCP', 'UDP', 'SCTP']);
const labelText = z.string().max(LIMITS.labelLength, `must be at most ${LIMITS.labelLength} characters`);
const labels = z.record(labelText, labelText).refine((l) => Object.keys(l).length <= LIMITS.labelsPerPod, `at most ${LIMITS.labelsPerPod} labels`);

export const networkSchema = z.strictObject({
  name,
  subnet: cidr,
  /** The network's IPv6 subnet (dual-stack): its hosts' address6 lie inside it. */
  subnet6: cidr6.optional(),
  /** The link MTU of every interface on this network (eth0 of its hosts, the router's ports); unset: the kernel's 1500. */
  mtu: z.number().int().min(68, 'must be at least 68 (IPv4 minimum)').max(9000, 'must be at most 9000').optional(),
});

export const routeSchema = z.strictObject({
  to: z.union([cidr, ipv4, cidr6, ipv6]),
  /** One next hop, or several for equal-cost multipath (a load balancer spreading flows over nodes); IPv6 routes take IPv6 next hops. */
  via: z.union([ipv4, ipv6, most(z.array(z.union([ipv4, ipv6])).min(1), LIMITS.nextHops, 'next hops')]),
});

export const interfaceSchema = z.strictObject({
  network: name,
  address: ipv4,
  address6: ipv6.optional(),
});

export const routerSchema = z.strictObject({
  name,
  interfaces: most(z.array(interfaceSchema).min(1), LIMITS.interfacesPerRouter, 'interfaces per router'),
  routes: most(z.array(routeSchema), LIMITS.routesPerRouter, 'routes per router').default([]),
  /** Spread flows over ECMP next hops by ports too (fib_multipath_hash_policy=1), as a cloud load balancer does. */
  hashPorts: z.boolean().default(false),
});

/** A Node taint (spec.taints[]): key, optional value, effect. kube-proxy looks at one key only, ToBeDeletedByClusterAutoscaler. */
export const taintSchema = z.strictObject({
  key: z.string().regex(/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, 'must be a qualified name like ToBeDeletedByClusterAutoscaler or example.com/key').max(316),
  value: labelText.optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
});

export const nodeSchema = z.strictObject({
  name,
  network: name,
  address: ipv4,
  /** The node's IPv6 InternalIP (dual-stack), inside its network's subnet6. */
  address6: ipv6.optional(),
  podCIDR: cidr,
  /** The node's IPv6 pod range (spec.podCIDRs[1]), inside cluster.podCIDR6. */
  podCIDR6: cidr6.optional(),
  /** Checked against the kernel's interface name limit with the other derived names (checks/names.ts). */
  bridge: z.string().default('cbr0'),
  /** The Node's labels; `topology.kubernetes.io/zone` is its zone (EndpointSlice zones and hints, kube-proxy's topology). */
  labels: labels.optional(),
  /** true: the Node has a deletionTimestamp (being deleted): kube-proxy's /healthz answers 503 there. */
  deleting: z.boolean().optional(),
  /** The Node's taints; `ToBeDeletedByClusterAutoscaler` (any effect) also turns kube-proxy's /healthz to 503 there (v1.28+). */
  taints: most(z.array(taintSchema), LIMITS.taintsPerNode, 'taints per node').optional(),
  /** More addresses on eth0, in the node's network, after `address` (the primary one, kube-proxy's node IP). */
  extraAddresses: most(z.array(ipv4).min(1), LIMITS.loadBalancerIPs, 'extra addresses').optional(),
  /** The bridge's address, the pods' gateway (unset: the first address of podCIDR). */
  bridgeAddress: ipv4.optional(),
  /**
   * More network attachments after eth0 (a multi-homed node): eth1, eth2, ... in this order, each
   * an address on another network. The node reaches that network's subnet through it directly, not
   * through a router: replies to a client there leave by eth1 whatever interface the request came in on.
   */
  interfaces: most(z.array(z.strictObject({ network: name, address: ipv4 })).min(1), LIMITS.interfacesPerNode, 'more interfaces per node').optional(),
});

export const clientSchema = z.strictObject({
  name,
  network: name,
  address: ipv4,
  address6: ipv6.optional(),
  /** More addresses on eth0, in the client's network, after `address`: a walkthrough's traffic.source may send from one. */
  extraAddresses: most(z.array(ipv4).min(1), LIMITS.loadBalancerIPs, 'extra addresses').optional(),
});

export const podSchema = z.strictObject({
  name,
  node: name,
  address: ipv4,
  /** The pod's IPv6 address (status.podIPs[1]), inside its node's podCIDR6. */
  address6: ipv6.optional(),
  labels: labels.default({}),
  /** false: the pod runs but fails its readiness probe, so it is not an endpoint. */
  ready: z.boolean().default(true),
  /**
   * true: the pod is being deleted and serves out its grace period. Its EndpointSlice entry is
   * ready=false, serving=<ready>, terminating=true; kube-proxy uses it only when no ready one is left.
   */
  terminating: z.boolean().default(false),
  /** The program the pod runs: an HTTP server that reports who it saw, or a cluster DNS server. */
  workload: z.enum(['http', 'dns']).default('http'),
  /**
   * The containers' named ports (spec.containers[].ports): a Service whose targetPort is a name
   * reaches this pod on the containerPort of that name and protocol; a pod without it is no
   * endpoint for that Service port.
   */
  ports: most(z.array(z.strictObject({ name: portName, containerPort: port, protocol: protocol.default('TCP') })).min(1), LIMITS.portsPerService, 'ports per pod').optional(),
});

export const servicePortSchema = z.strictObject({
  name: z.string().regex(/^([a-z0-9]([a-z0-9-]*[a-z0-9])?)?$/, 'must be a DNS label or empty').default(''),
  /** SCTP: rules only here (the lab's kernel may lack SCTP sockets; derived walkthroughs skip it). */
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).default('TCP'),
  port,
  /** A number, or the name of a pod's container port (pods[].ports), resolved per pod as the EndpointSlice controller does. */
  targetPort: z.union([port, portName]),
  nodePort: z.number().int().optional(),
});

export const serviceSchema = z.strictObject({
  name,
  namespace: name.default('default'),
  type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']),
  clusterIP: ipv4,
  /** spec.ipFamilyPolicy: unset is SingleStack, as the API server defaults it. */
  ipFamilyPolicy: z.enum(['SingleStack', 'PreferDualStack', 'RequireDualStack']).optional(),
  /** spec.ipFamilies; the lab's clusters are IPv4-primary, so IPv4 comes first. */
  ipFamilies: z.array(z.enum(['IPv4', 'IPv6'])).min(1).max(2).optional(),
  /** spec.clusterIPs: clusterIP first, then the IPv6 ClusterIP from cluster.serviceCIDR6. */
  clusterIPs: z.array(z.union([ipv4, ipv6])).min(1).max(2).optional(),
  /** Left out: a Service without a selector, so without endpoints (kube-proxy rejects its traffic). */
  selector: labels.optional(),
  ports: most(z.array(servicePortSchema).min(1), LIMITS.portsPerService, 'ports per service'),
  externalTrafficPolicy: z.enum(['Cluster', 'Local']).default('Cluster'),
  internalTrafficPolicy: z.enum(['Cluster', 'Local']).default('Cluster'),
  sessionAffinity: z.enum(['None', 'ClientIP']).default('None'),
  /** sessionAffinityConfig.clientIP.timeoutSeconds: how long a client sticks to its endpoint (Kubernetes' default, 3 hours). */
  sessionAffinityTimeoutSeconds: z.number().int().min(1).max(86400).default(10800),
  /** status.loadBalancer.ingress[].ip, for type LoadBalancer. */
  loadBalancerIPs: most(z.array(ipv4), LIMITS.loadBalancerIPs, 'load balancer IPs').default([]),
  /** spec.externalIPs: addresses routed to the nodes that kube-proxy treats as the service's. */
  externalIPs: most(z.array(ipv4), LIMITS.loadBalancerIPs, 'external IPs').default([]),
  /** spec.loadBalancerSourceRanges: only these sources may use the load balancer IPs. */
  loadBalancerSourceRanges: most(z.array(cidr), LIMITS.sourceRanges, 'source ranges').default([]),
  /** Dual-stack: the IPv6 load balancer IPs (status.loadBalancer.ingress[].ip of family IPv6); the IPv6 proxier's. */
  loadBalancerIPs6: most(z.array(ipv6), LIMITS.loadBalancerIPs, 'IPv6 load balancer IPs').optional(),
  /** Dual-stack: the IPv6 entries of spec.externalIPs; the IPv6 proxier's. */
  externalIPs6: most(z.array(ipv6), LIMITS.loadBalancerIPs, 'IPv6 external IPs').optional(),
  /** Dual-stack: the IPv6 entries of spec.loadBalancerSourceRanges; the IPv6 proxier's (none: every IPv6 source may use the IPv6 load balancer IPs, as upstream). */
  loadBalancerSourceRanges6: most(z.array(cidr6), LIMITS.sourceRanges, 'IPv6 source ranges').optional(),
  /** spec.healthCheckNodePort (LoadBalancer, externalTrafficPolicy Local): kube-proxy answers 200 or 503 here by local endpoint count. */
  healthCheckNodePort: z.number().int().optional(),
  /** spec.allocateLoadBalancerNodePorts (type LoadBalancer; unset: true): false, and a port may leave out its nodePort. */
  allocateLoadBalancerNodePorts: z.boolean().optional(),
  /** spec.trafficDistribution: PreferClose (= PreferSameZone) or PreferSameNode; the EndpointSlice controller writes hints and kube-proxy follows them. */
  trafficDistribution: z.enum(['PreferClose', 'PreferSameZone', 'PreferSameNode']).optional(),
});

/** One port of an EndpointSlice: the Service port it serves (by name) and where the endpoints listen. */
export const endpointSlicePortSchema = z.strictObject({
  name: z.string().regex(/^([a-z0-9]([a-z0-9-]*[a-z0-9])?)?$/, 'must be a DNS label or empty').default(''),
  /** SCTP: rules only here (the lab's kernel may lack SCTP sockets; derived walkthroughs skip it). */
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).default('TCP'),
  port,
});

/** One endpoint of an EndpointSlice, with its conditions as the API has them (unset: ready, serving = ready, not terminating). */
export const sliceEndpointSchema = z.strictObject({
  /** The address (addresses[0]): a pod's, whose workload then listens on the slice's ports. */
  address: ipv4,
  /** The node the endpoint says it is on; left out, it is local to no node (Local policies never pick it). */
  nodeName: name.optional(),
  ready: z.boolean().default(true),
  serving: z.boolean().optional(),
  terminating: z.boolean().default(false),
});

/** An EndpointSlice written out by hand, for a Service without a selector (as a user or a controller of their own would). */
export const endpointSliceSchema = z.strictObject({
  name,
  namespace: name.default('default'),
  /** The kubernetes.io/service-name label: the Service it belongs to. */
  service: name,
  ports: most(z.array(endpointSlicePortSchema).min(1), LIMITS.portsPerService, 'ports per slice'),
  endpoints: most(z.array(sliceEndpointSchema), LIMITS.pods, 'endpoints per slice'),
});

export const clusterSchema = z.strictObject({
  /** The cluster-wide pod range: kube-proxy's --cluster-cidr. */
  podCIDR: cidr,
  serviceCIDR: cidr,
  /** IPv6 pod range (dual-stack): kube-proxy's --cluster-cidr gets both; nodes' podCIDR6 lie inside it. */
  podCIDR6: cidr6.optional(),
  /** IPv6 service range (dual-stack): IPv6 ClusterIPs come from here. */
  serviceCIDR6: cidr6.optional(),
  /** cluster DNS domain, for service names such as web.default.svc.cluster.local */
  domain: z
    .string()
    .regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?$/, 'must be a DNS domain like cluster.local')
    .max(253)
    .default('cluster.local'),
  /** kubelet's clusterDNS: when set, every pod gets a resolv.conf naming this service IP. */
  dns: ipv4.optional(),
  /** kube-apiserver's --service-node-port-range, "min-max" (unset: 30000-32767): where nodePorts may lie. */
  serviceNodePortRange: z.string().regex(/^\d{1,5}-\d{1,5}$/, 'must be a port range like 30000-32767').optional(),
});

/** kube-proxy's own configuration: which proxier writes the rules. */
export const kubeProxySchema = z.strictObject({
  /** iptables (rule lists, the long-time default) or nftables (verdict maps, one table). */
  mode: z.enum(['iptables', 'nftables']).default('iptables'),
  /**
   * --nodeport-addresses: the node addresses NodePorts answer on: CIDRs, or "primary" (the node's
   * own address). Unset: every local address in iptables mode, "primary" in nftables mode.
   */
  nodePortAddresses: most(z.array(z.union([z.literal('primary'), cidr])).min(1), LIMITS.sourceRanges, 'nodePortAddresses').optional(),
  /** --iptables-localhost-nodeports (iptables mode; unset: true): NodePorts answer on 127.0.0.1 too. */
  localhostNodePorts: z.boolean().optional(),
  /** --masquerade-all: masquerade every connection to a ClusterIP, pods' too. */
  masqueradeAll: z.boolean().optional(),
  /** --detect-local-mode: how kube-proxy tells pod traffic from the rest (unset: ClusterCIDR, from cluster.podCIDR). */
  detectLocalMode: z.enum(['ClusterCIDR', 'NodeCIDR', 'BridgeInterface', 'InterfaceNamePrefix']).optional(),
  /** detectLocal.bridgeInterface / detectLocal.interfaceNamePrefix, for those two modes. */
  detectLocal: z.strictObject({ bridgeInterface: z.string().min(1).max(15).optional(), interfaceNamePrefix: z.string().min(1).max(15).optional() }).optional(),
});

/** The modes of the pod network between nodes (docs/pod-network.md); each is one module under lab/plan/pod-network/. */
export const POD_NETWORK_MODES = ['routed', 'host-gw', 'vxlan', 'bgp'] as const;

/** How pod traffic crosses from node to node: the CNI's part of the path. */
export const podNetworkSchema = z.strictObject({
  /** routed: the router's static pod-CIDR routes; host-gw and vxlan: flannel's backends; bgp: routes learned by BIRD, as Calico does. */
  mode: z.enum(POD_NETWORK_MODES).default('routed'),
});

/** How LoadBalancer IPs reach the nodes (docs/load-balancers.md); each mode is one module under lab/plan/load-balancer/. */
export const LOAD_BALANCER_MODES = ['static', 'bgp', 'l2'] as const;

export const loadBalancerSchema = z.strictObject({
  /** static: the router routes the file writes (and health checks they follow); bgp: MetalLB's BGP mode, every eligible node's BIRD announces the IP; l2: MetalLB's layer-2 mode, one elected node answers ARP for it. */
  mode: z.enum(LOAD_BALANCER_MODES).default('static'),
  /** static: the load balancer health-checks kube-proxy's /healthz (port 10256) for externalTrafficPolicy Cluster Services, as cloud providers do. */
  proxyHealthz: z.boolean().optional(),
});

export const topologySchema = z.strictObject({
  lab: name,
  description: z.string().max(LIMITS.description, `must be at most ${LIMITS.description} characters`).default(''),
  cluster: clusterSchema,
  networks: most(z.array(networkSchema).min(1), LIMITS.networks, 'networks'),
  routers: most(z.array(routerSchema), LIMITS.routers, 'routers').default([]),
  nodes: most(z.array(nodeSchema).min(1), LIMITS.nodes, 'nodes'),
  clients: most(z.array(clientSchema), LIMITS.clients, 'clients').default([]),
  pods: most(z.array(podSchema), LIMITS.pods, 'pods').default([]),
  services: most(z.array(serviceSchema), LIMITS.services, 'services').default([]),
  /** EndpointSlices for Services without a selector (those with one get theirs from their pods). */
  endpointSlices: most(z.array(endpointSliceSchema), LIMITS.services, 'endpoint slices').optional(),
  kubeProxy: kubeProxySchema.default({ mode: 'iptables' }),
  podNetwork: podNetworkSchema.default({ mode: 'routed' }),
  loadBalancer: loadBalancerSchema.default({ mode: 'static' }),
  /** The walkthrough file, relative to this file, in its folder. */
  walkthrough: z.string().min(1).max(LIMITS.path, `must be at most ${LIMITS.path} characters`).optional(),
});

export type TopologyInput = z.input<typeof topologySchema>;
export type Topology = z.output<typeof topologySchema>;
export type Network = z.output<typeof networkSchema>;
export type Router = z.output<typeof routerSchema>;
export type Node = z.output<typeof nodeSchema>;
export type Taint = z.output<typeof taintSchema>;
export type Client = z.output<typeof clientSchema>;
export type Pod = z.output<typeof podSchema>;
export type Service = z.output<typeof serviceSchema>;
export type ServicePort = z.output<typeof servicePortSchema>;
export type EndpointSlice = z.output<typeof endpointSliceSchema>;
export type ProxyMode = z.output<typeof kubeProxySchema>['mode'];
export type PodNetworkMode = z.output<typeof podNetworkSchema>['mode'];
export type LoadBalancerMode = z.output<typeof loadBalancerSchema>['mode'];
export type RouterRoute = z.output<typeof routeSchema>;
