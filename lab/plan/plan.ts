import type { Topology } from '../topology/schema.js';
import { namespaceName } from '../topology/names.js';
import { podPorts } from './endpoints.js';
import { initialRestore, kubeProxyRules } from './kube-proxy/iptables.js';
import { planNetwork, type NetworkPlan } from './network.js';

export interface WorkloadPlan {
  pod: string;
  node: string;
  ns: string;
  ip: string;
  ports: number[];
}

export interface Plan extends NetworkPlan {
  lab: string;
  /** One iptables-restore payload per node namespace. */
  iptables: { ns: string; node: string; payload: string }[];
  workloads: WorkloadPlan[];
}

/** Pure: everything `up` will do, computed before anything is touched. */
export function planLab(t: Topology): Plan {
  const network = planNetwork(t);
  const iptables = t.nodes.map((n) => ({ ns: namespaceName(t.lab, n.name), node: n.name, payload: initialRestore(kubeProxyRules(t, n.name)) }));
  const workloads = t.pods
    .map((p) => ({ pod: p.name, node: p.node, ns: namespaceName(t.lab, p.name), ip: p.address, ports: podPorts(t, p) }))
    .filter((w) => w.ports.length > 0);
  return { ...network, lab: t.lab, iptables, workloads };
}
