import { ExitCode, LabError } from '../errors.js';
import { nodeEligible } from './kube-proxy/proxy-health.js';
import { taintSchema, type Node, type Taint, type Topology } from '../topology/schema.js';

/**
 * Node changes on a running lab, as data (`lab node`). Pure. A running lab is its topology file
 * plus these: per node, whether the Node is being deleted (it has a deletionTimestamp) and its
 * taints, replacing the file's when set. kube-proxy's SyncNode reads both: a node being deleted or
 * tainted ToBeDeletedByClusterAutoscaler is not eligible, and its /healthz answers 503.
 */
export interface NodeChange {
  deleting?: boolean;
  taints?: Taint[];
}

export type NodeChanges = Record<string, NodeChange>;

/** The topology with the recorded node changes on top of the file's nodes. */
export function applyNodeChanges(t: Topology, c: NodeChanges | undefined): Topology {
  if (!c || Object.keys(c).length === 0) return t;
  return { ...t, nodes: t.nodes.map((n) => withChange(n, c[n.name])) };
}

function withChange(n: Node, c: NodeChange | undefined): Node {
  if (!c) return n;
  const out: Node = { ...n };
  if (c.deleting !== undefined) out.deleting = c.deleting;
  if (c.taints !== undefined) out.taints = c.taints;
  return out;
}

/** What `lab node` asks: set or clear the deletion mark, add taints, remove taints by key (optionally key:Effect). */
export interface NodeRequest {
  deleting?: boolean;
  taint?: Taint[];
  untaint?: string[];
}

const bad = (message: string) => new LabError(message, ExitCode.badInput);

/**
 * A taint in kubectl taint's syntax: `key[=value]:Effect` (e.g. ToBeDeletedByClusterAutoscaler:NoSchedule;
 * the cluster autoscaler writes the time as the value and NoSchedule as the effect).
 */
export function parseTaint(text: string): Taint {
  const m = /^([^=:]+)(?:=([^:]*))?:([A-Za-z]+)$/.exec(text);
  if (!m) throw bad(`--taint ${text}: write key[=value]:Effect, e.g. ToBeDeletedByClusterAutoscaler:NoSchedule`);
  const parsed = taintSchema.safeParse({ key: m[1], ...(m[2] !== undefined ? { value: m[2] } : {}), effect: m[3] });
  if (!parsed.success) throw bad(`--taint ${text}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'taint'} ${i.message}`).join('; ')}`);
  return parsed.data;
}

/**
 * The node after the request, and the change to record. Taints are matched as kubectl does: a new
 * taint replaces one with the same key and effect; `key` removes every taint of that key,
 * `key:Effect` only that one; removing a taint the node does not have is refused.
 */
export function planNodeChange(t: Topology, nodeName: string, req: NodeRequest): { before: Node; after: Node; change: NodeChange } {
  const before = t.nodes.find((n) => n.name === nodeName);
  if (!before) throw bad(`lab "${t.lab}" has no node "${nodeName}" (nodes: ${t.nodes.map((n) => n.name).join(', ')})`);
  let taints = [...(before.taints ?? [])];
  for (const spec of req.untaint ?? []) {
    const [key, effect] = spec.split(':');
    const keep = taints.filter((x) => !(x.key === key && (effect === undefined || x.effect === effect)));
    if (keep.length === taints.length) throw bad(`node ${nodeName} has no taint ${spec} (taints: ${taints.map(taintText).join(', ') || 'none'})`);
    taints = keep;
  }
  for (const x of req.taint ?? []) taints = [...taints.filter((y) => !(y.key === x.key && y.effect === x.effect)), x];
  const change: NodeChange = {};
  if (req.deleting !== undefined) change.deleting = req.deleting;
  if (req.taint?.length || req.untaint?.length) change.taints = taints;
  return { before, after: withChange(before, change), change };
}

/** The recorded changes with one more for this node (later fields replace earlier ones). */
export const recordNodeChange = (c: NodeChanges | undefined, node: string, change: NodeChange): NodeChanges => ({ ...c, [node]: { ...c?.[node], ...change } });

/** kubectl's way of writing a taint: key=value:Effect, or key:Effect without a value. */
export const taintText = (x: Taint) => `${x.key}${x.value !== undefined ? `=${x.value}` : ''}:${x.effect}`;

/** What kube-proxy's SyncNode decides for the node, and what its /healthz answers for it (when its syncs keep up). */
export function nodeVerdict(n: Node): { nodeEligible: boolean; healthz: 200 | 503 } {
  const eligible = nodeEligible(n);
  return { nodeEligible: eligible, healthz: eligible ? 200 : 503 };
}
