import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab, labProcesses, namespaces, requireRoot, sh } from './helpers.js';
import type { VerifyResult as Report } from '../../lab/verify/engine.js';

/**
 * The traffic-policy scenarios against the real kernel: externalTrafficPolicy Local (and a node
 * without a local endpoint), internalTrafficPolicy Local, sessionAffinity ClientIP; variants
 * chosen with --set, their walkthroughs with --set walkthrough= or verify --walkthrough.
 */

const root = requireRoot();
// Lab names that are no other scenario's name nor start with one ("nodeport-local-…" would look
// like lab "nodeport" to a test counting processes by prefix).
const ETP = 'etp-local';
const ETP_UNREADY = 'etp-unready';
const ITP = 'itp-local';
const ITP_UNREADY = 'itp-unready';
const AFF = 'sticky';
const LABS = [ETP, ETP_UNREADY, ITP, ITP_UNREADY, AFF];

async function verify(name: string, extra: string[] = []): Promise<{ exitCode: number; report: Report; raw: string }> {
  const r = await lab(['verify', name, '--json', ...extra]);
  let report: Report;
  try {
    report = JSON.parse(r.stdout) as Report;
  } catch {
    throw new Error(`verify ${name} printed no report (exit ${r.exitCode}): ${r.stderr}`);
  }
  return { exitCode: r.exitCode, report, raw: r.stdout };
}

/** Failed steps, for a readable assertion message. */
const failures = (r: Report) =>
  r.paths.flatMap((p) => p.steps.filter((s) => s.status === 'fail').map((s) => `${p.name} ${s.step} ${s.title}: ${s.seen}`)).join('\n');
const path = (r: Report, name: string) => r.paths.find((p) => p.name === name)!;
const flowsTo = (r: Report, target: string) => r.flows.filter((f) => f.target === target);

async function up(args: string[]): Promise<void> {
  const r = await lab(['up', ...args]);
  expect(r.exitCode, r.stderr).toBe(0);
}

/** Nothing of the lab in the host's own network namespace: no address, route or rule of it. */
async function expectHostClean(): Promise<void> {
  const addresses = await sh('ip', ['-o', 'addr', 'show']);
  const routes = await sh('ip', ['route', 'show', 'table', 'all']);
  const rules = await sh('iptables-save', []);
  for (const prefix of ['10.240.0.', '10.241.0.', '10.244.']) {
    expect(addresses).not.toContain(prefix);
    expect(routes).not.toContain(prefix);
  }
  expect(rules).not.toContain('KUBE-');
}

describe.skipIf(!root)('traffic policies against the real kernel', () => {
  beforeAll(async () => {
    for (const l of LABS) await lab(['down', l]);
  });
  afterAll(async () => {
    for (const l of LABS) await lab(['down', l]);
  });

  describe('externalTrafficPolicy: Local', () => {
    it('each NodePort reaches only its own node\'s pod, which sees the real client address and port', async () => {
      await up(['nodeport-local', '--name', ETP]);
      const { exitCode, report } = await verify(ETP);
      expect(exitCode, failures(report)).toBe(0);
      expect(report.failed).toBe(0);
      const node1 = flowsTo(report, '10.240.0.4:32000');
      const node2 = flowsTo(report, '10.240.0.5:32000');
      expect(node1.length).toBeGreaterThanOrEqual(10);
      expect(node2.length).toBeGreaterThanOrEqual(10);
      expect(new Set(node1.map((f) => f.answer?.pod))).toEqual(new Set(['web-1']));
      expect(new Set(node2.map((f) => f.answer?.pod))).toEqual(new Set(['web-2']));
      // No SNAT at all: every pod saw exactly the address and port the request left from.
      for (const f of [...node1, ...node2]) expect(f.answer!.client).toBe(f.client);
      expect(report.flows[0]!.client).toMatch(/^10\.241\.0\.4:/);
    });

    it('a node without a ready local endpoint drops its NodePort traffic (variant chosen with --set, its walkthrough too)', async () => {
      await up(['nodeport-local', '--name', ETP_UNREADY, '--set', 'pods.web-2.ready=false', '--set', 'walkthrough=nodeport-local-unready.walkthrough.yaml']);
      const { exitCode, report } = await verify(ETP_UNREADY);
      expect(exitCode, failures(report)).toBe(0);
      expect(report.title).toMatch(/web-2 not ready/);
      const dropped = path(report, 'via-node2-dropped');
      expect(dropped.flow?.answer).toBeUndefined();
      expect(dropped.steps.find((s) => s.title.includes('dropped it'))!.seen).toMatch(/has no local endpoints/);
      const rules = await lab(['rules', ETP_UNREADY, 'node2', '-t', 'filter']);
      expect(rules.stdout).toMatch(/-A KUBE-EXTERNAL-SERVICES .*has no local endpoints.*--dport 32000 -j DROP/);
      expect((await lab(['rules', ETP_UNREADY, 'node2'])).stdout).not.toContain('KUBE-SVL-');
      // Not ready is not stopped: web-2 still answers on its own address.
      const direct = await lab(['exec', ETP_UNREADY, 'client', '--', 'curl', '-sS', '--max-time', '1', 'http://10.244.1.2:8443/']);
      expect(JSON.parse(direct.stdout).pod).toBe('web-2');
      expect((await lab(['down', ETP_UNREADY])).exitCode).toBe(0);
    });

    it('lab kill makes the running lab that variant: its walkthrough passes, the default one no longer does; revive undoes it', async () => {
      const kill = await lab(['kill', ETP, 'web-2', '--json']);
      expect(kill.exitCode, kill.stderr).toBe(0);
      const k = JSON.parse(kill.stdout) as { rules: { node: string; removed: string[] }[] };
      // node2 loses web-2's KUBE-SEP and its KUBE-SVL (no local endpoint left); node1 only the KUBE-SEP.
      expect(k.rules.find((r) => r.node === 'node2')!.removed.map((c) => c.slice(0, 9)).sort()).toEqual(['KUBE-SEP-', 'KUBE-SVL-']);
      expect(k.rules.find((r) => r.node === 'node1')!.removed.map((c) => c.slice(0, 9))).toEqual(['KUBE-SEP-']);

      const unready = await verify(ETP, ['--walkthrough', 'nodeport-local-unready']);
      expect(unready.exitCode, failures(unready.report)).toBe(0);
      const usual = await verify(ETP);
      expect(usual.exitCode).toBe(1);
      expect(path(usual.report, 'via-node2').steps.some((s) => s.status === 'fail')).toBe(true);

      expect((await lab(['revive', ETP, 'web-2'])).exitCode).toBe(0);
      const again = await verify(ETP);
      expect(again.exitCode, failures(again.report)).toBe(0);
      expect((await lab(['down', ETP])).exitCode).toBe(0);
    });
  });

  describe('internalTrafficPolicy: Local', () => {
    it('a pod\'s ClusterIP traffic reaches only its own node\'s endpoint; the NodePort still spreads', async () => {
      await up(['internal-local', '--name', ITP]);
      const { exitCode, report } = await verify(ITP);
      expect(exitCode, failures(report)).toBe(0);
      const fromNode1 = report.flows.filter((f) => f.client.startsWith('10.244.0.10:'));
      const fromNode2 = report.flows.filter((f) => f.client.startsWith('10.244.1.10:'));
      expect(fromNode1).toHaveLength(30);
      expect(fromNode2).toHaveLength(30);
      expect(fromNode1.every((f) => f.answer?.pod === 'web-1')).toBe(true);
      expect(fromNode2.every((f) => f.answer?.pod === 'web-2')).toBe(true);
      const external = report.flows.filter((f) => f.client.startsWith('10.241.0.4:'));
      expect(new Set(external.map((f) => f.answer?.pod))).toEqual(new Set(['web-1', 'web-2']));
      expect((await lab(['down', ITP])).exitCode).toBe(0);
    });

    it('a node without a ready local endpoint drops its pods\' ClusterIP traffic, even with web-1 ready elsewhere', async () => {
      await up(['internal-local', '--name', ITP_UNREADY, '--set', 'pods.web-2.ready=false', '--set', 'walkthrough=internal-local-unready.walkthrough.yaml']);
      const { exitCode, report } = await verify(ITP_UNREADY);
      expect(exitCode, failures(report)).toBe(0);
      expect(path(report, 'frontend-on-node2-dropped').flow?.answer).toBeUndefined();
      expect((await lab(['rules', ITP_UNREADY, 'node2', '-t', 'filter'])).stdout).toMatch(/-A KUBE-SERVICES -d 172\.31\.0\.5\/32 .*has no local endpoints.*-j DROP/);
      expect((await lab(['down', ITP_UNREADY])).exitCode).toBe(0);
    });
  });

  describe('sessionAffinity: ClientIP', () => {
    it('fifty connections of one client reach one pod, and the next run sticks to the same pod', async () => {
      await up(['affinity', '--name', AFF]);
      const first = await verify(AFF);
      expect(first.exitCode, failures(first.report)).toBe(0);
      const viaNode1 = (r: Report) => r.flows.filter((f) => f.client.startsWith('10.241.0.4:') && f.target === '10.240.0.4:32000');
      const pods = new Set(viaNode1(first.report).map((f) => f.answer?.pod));
      expect(viaNode1(first.report)).toHaveLength(50);
      expect(pods.size).toBe(1);
      // The kernel's affinity list outlives the run (10800 s): the next run finds the same pod.
      const second = await verify(AFF);
      expect(second.exitCode, failures(second.report)).toBe(0);
      expect(new Set(viaNode1(second.report).map((f) => f.answer?.pod))).toEqual(pods);
      const recent = await lab(['exec', AFF, 'node1', '--', 'sh', '-c', 'cat /proc/net/xt_recent/KUBE-SEP-*']);
      expect(recent.stdout).toContain('src=10.241.0.4');
      expect((await lab(['down', AFF])).exitCode).toBe(0);
    });
  });

  it('left no namespace, process or host trace of these labs', async () => {
    const ns = await namespaces();
    for (const l of LABS) {
      expect(ns.filter((n) => n.startsWith(`${l}-`))).toEqual([]);
      expect(await labProcesses(l)).toEqual([]);
    }
    await expectHostClean();
  });
});
