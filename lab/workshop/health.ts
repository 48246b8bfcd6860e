import { readNftText, readRules } from '../kernel/readers.js';
import { nftExisting } from '../kernel/rules.js';
import { planLab } from '../plan/plan.js';
import { parseSave, type ParsedRule } from '../plan/kube-proxy/rules.js';
import { namespaceName } from '../topology/names.js';
import type { Topology } from '../topology/schema.js';
import type { Flow } from '../verify/flows.js';
import { sendRequest } from '../verify/traffic.js';
import { loadWalkthrough } from '../verify/walkthrough.js';
import { podNetworkHealth, type DaemonLook } from './pod-network-health.js';
import { hasWorkshop, loadWorkshop, scenarioOf } from './load.js';

/**
 * The instructor's check of an attendee's lab: is everything the workshop relies on there?
 * Namespaces, running workloads, kube-proxy's rules on every node as planned, and an answer
 * through the scenario's entry point. Reads only, plus a few requests of its own.
 */

export interface HealthItem {
  name: string;
  /** null: not checked (an earlier failure makes it meaningless). */
  ok: boolean | null;
  detail: string;
}

export interface HealthReport {
  lab: string;
  scenario?: string;
  healthy: boolean;
  checks: HealthItem[];
}

const ENTRY_REQUESTS = 8;
/** Source ports of the check's own requests: inside the range the workshop treats as the lab's own. */
const CHECK_PORT_BASE = 30000;

/** A rule's identity for comparing plan and kernel: the parts iptables-save prints as written. */
export function ruleSignature(r: ParsedRule): string {
  const o = (k: string) => r.options.get(k) ?? '';
  return [r.table, r.chain, o('--comment'), o('--dport'), o('-d').replace(/\/(32|128)$/, ''), o('-j'), o('--to-destination')].join('|');
}

/** Planned rules that the live table lacks (as a multiset: a rule planned twice must be there twice). Pure. */
export function missingRules(planned: ParsedRule[], live: ParsedRule[]): ParsedRule[] {
  const have = new Map<string, number>();
  for (const r of live) have.set(ruleSignature(r), (have.get(ruleSignature(r)) ?? 0) + 1);
  const missing: ParsedRule[] = [];
  for (const r of planned) {
    const key = ruleSignature(r);
    const n = have.get(key) ?? 0;
    if (n > 0) have.set(key, n - 1);
    else missing.push(r);
  }
  return missing;
}

/** What the check looks at, read by lab/api/workshop.ts from a lab that is up. */
export interface LabLook {
  lab: string;
  /** When the lab came up. */
  since: string;
  topologyPath: string;
  /** The topology as the lab runs it (with run-time pod changes). */
  topology: Topology;
  namespaces: { ns: string; present: boolean }[];
  workloads: { pod: string; pid: number; running: boolean }[];
  /** The pod network's daemons (bgp: each BIRD) and their sessions, as lab status reads them. */
  daemons?: DaemonLook[];
}

const CHECK_NAMES = ['lab is up', 'namespaces present', 'workloads running', 'pod network', 'kube-proxy rules', 'entry point answers'];

/** The report for a lab that is not up: the first check fails, the others are meaningless. */
export function notUpReport(lab: string, why: string): HealthReport {
  const checks: HealthItem[] = CHECK_NAMES.map((name, i) => (i === 0 ? { name, ok: false, detail: why } : { name, ok: null, detail: 'not checked' }));
  return { lab, healthy: false, checks };
}

export async function checkHealth(look: LabLook): Promise<HealthReport> {
  const { lab } = look;
  const checks: HealthItem[] = [];
  const report = (scenario?: string): HealthReport => ({ lab, scenario, healthy: checks.every((c) => c.ok !== false), checks });

  const running = { path: look.topologyPath, topology: look.topology };
  const scenario = scenarioOf(running.path);
  checks.push({ name: 'lab is up', ok: true, detail: `since ${look.since}, from ${scenario}` });

  const namespaces = look.namespaces;
  const missingNs = namespaces.filter((n) => !n.present).map((n) => n.ns);
  checks.push({
    name: 'namespaces present',
    ok: missingNs.length === 0,
    detail: missingNs.length ? `missing: ${missingNs.join(', ')}` : `${namespaces.length} of ${namespaces.length}`,
  });

  const workloads = look.workloads;
  const stopped = workloads.filter((w) => !w.running);
  checks.push({
    name: 'workloads running',
    ok: stopped.length === 0,
    detail: stopped.length ? `stopped: ${stopped.map((w) => w.pod).join(', ')}` : workloads.map((w) => `${w.pod} (pid ${w.pid})`).join(', ') || 'none',
  });

  const plan = planLab(running.topology);
  const present = new Set(namespaces.filter((n) => n.present).map((n) => n.ns));
  const netName = `pod network (${running.topology.podNetwork.mode})`;
  if (missingNs.length) checks.push({ name: netName, ok: null, detail: 'not checked: namespaces are missing' });
  else checks.push({ name: netName, ...(await podNetworkHealth(lab, running.topology, look.daemons ?? [])) });
  for (const node of plan.kubeProxy) {
    const name = `kube-proxy rules on ${node.node}`;
    if (!present.has(node.ns)) {
      checks.push({ name, ok: false, detail: `namespace ${node.ns} is missing` });
      continue;
    }
    // A dual-stack cluster: the IPv6 proxier's rules (ip6tables, table ip6 kube-proxy) as well.
    const families = [{ payload: node.payload, ipv6: false }, ...(node.payload6 !== undefined ? [{ payload: node.payload6, ipv6: true }] : [])];
    for (const f of families) {
      const { planned, missing } = node.mode === 'nftables' ? await missingNftChains(node.ns, f.payload, f.ipv6) : await missingIptablesRules(node.ns, f.payload, f.ipv6);
      checks.push({
        name: f.ipv6 ? `kube-proxy IPv6 rules on ${node.node}` : name,
        ok: missing.length === 0,
        detail: missing.length ? `${missing.length} of ${planned} missing, first: ${missing[0]}` : `all ${planned} present`,
      });
    }
  }

  const entry = entryPoint(running.topology, running.path);
  if (!entry) {
    checks.push({ name: 'entry point answers', ok: null, detail: 'no workshop entry or walkthrough traffic to send' });
    return report(scenario);
  }
  const sender = [...running.topology.clients, ...running.topology.pods].find((h) => h.name === entry.from);
  const name = `${entry.from} -> ${entry.to} answers`;
  if (!sender || !present.has(namespaceName(lab, sender.name))) {
    checks.push({ name, ok: false, detail: `no namespace for ${entry.from}` });
    return report(scenario);
  }
  const traffic = { from: entry.from, to: entry.to, requests: 1, maxRequests: 1, timeout: 1 };
  const base = CHECK_PORT_BASE + Math.floor(Math.random() * 2000);
  const flows: Flow[] = await Promise.all(
    Array.from({ length: ENTRY_REQUESTS }, (_, i) => sendRequest(namespaceName(lab, sender.name), traffic, 'check', i, base + i, sender.address)),
  );
  const answered = flows.filter((f) => f.answer);
  const byPod = new Map<string, number>();
  for (const f of answered) byPod.set(f.answer!.pod, (byPod.get(f.answer!.pod) ?? 0) + 1);
  const pods = [...byPod].map(([p, n]) => `${p} ${n}`).join(', ');
  const failure = flows.find((f) => !f.answer)?.error;
  checks.push({
    name,
    ok: answered.length === flows.length,
    detail: `${answered.length} of ${flows.length} answered${pods ? ` (${pods})` : ''}${failure ? `; failed: ${failure}` : ''}`,
  });
  return report(scenario);
}

/** Where to knock: the workshop's `entry`, else the walkthrough's traffic. */
function entryPoint(t: Parameters<typeof loadWorkshop>[0], topologyPath: string): { from: string; to: string } | undefined {
  if (hasWorkshop(topologyPath)) {
    const { workshop } = loadWorkshop(t, topologyPath);
    if (workshop.entry) return workshop.entry;
  }
  if (t.walkthrough) return loadWalkthrough(t, topologyPath).walkthrough.traffic;
  return undefined;
}

async function missingIptablesRules(ns: string, payload: string, ipv6: boolean): Promise<{ planned: number; missing: string[] }> {
  const planned = parseSave(payload).rules;
  return { planned: planned.length, missing: missingRules(planned, parseSave(await readRules(ns, { ipv6 })).rules).map((r) => `-t ${r.table} ${r.text}`) };
}

/** nftables mode: every chain the plan declares exists in the node's kube-proxy table, and none the plan fills is empty. */
async function missingNftChains(ns: string, payload: string, ipv6: boolean): Promise<{ planned: number; missing: string[] }> {
  const family = ipv6 ? 'ip6' : 'ip';
  const planned = [...new Set([...payload.matchAll(new RegExp(`^add chain ${family} kube-proxy (\\S+)`, 'gm'))].map((m) => m[1]!))];
  const have = new Set((await nftExisting(ns, ipv6 ? 'IPv6' : 'IPv4')).chains);
  const missing = planned.filter((c) => !have.has(c)).map((c) => `chain ${c}`);
  const emptied = emptiedNftChains(payload, await readNftText(ns, { allowFailure: true, ipv6 })).filter((c) => have.has(c));
  return { planned: planned.length, missing: [...missing, ...emptied.map((c) => `every rule of chain ${c} (the chain is empty)`)] };
}

/** Chains the plan puts rules in that the live `nft list table` shows empty. Pure. */
export function emptiedNftChains(payload: string, listing: string): string[] {
  const filled = new Set([...payload.matchAll(/^add rule ip6? kube-proxy (\S+) /gm)].map((m) => m[1]!));
  const out: string[] = [];
  for (const m of listing.matchAll(/^\s*chain (\S+) \{\n([\s\S]*?)^\s*\}/gm)) {
    const rules = m[2]!.split('\n').map((l) => l.trim()).filter((l) => l && !/^(type|policy|comment) /.test(l));
    if (filled.has(m[1]!) && rules.length === 0) out.push(m[1]!);
  }
  return out;
}
