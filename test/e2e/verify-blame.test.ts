import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabStatus } from '../../lab/api/status.js';
import { processState } from '../../lab/kernel/processes.js';
import { STATE_ROOT } from '../../lab/state/store.js';
import type { VerifyResult } from '../../lab/verify/engine.js';
import { isTcpdumpWriting, lab, requireRoot, sh, startLab } from './helpers.js';

/**
 * Issue 16, item 9: failures that blamed the wrong thing. A tcpdump killed under verify, a
 * workload process SIGKILLed or SIGSTOPped, a trace meeting a running scale: each is now named.
 */
const root = requireRoot();
const LAB = 'blame';

async function workloadPid(): Promise<number> {
  const [s] = JSON.parse((await lab(['status', LAB, '--json'])).stdout) as LabStatus[];
  return s!.workloads[0]!.pid;
}

const pcapStarted = (pid: number) => {
  try {
    return statSync(`/proc/${pid}/fd/3`).size >= 24;
  } catch {
    return false;
  }
};

/** The pid of this lab's verify capture at `file` (host-ifname.pcap), once its capture is open. */
async function capturePid(file: string, deadlineMs = 10_000): Promise<number | undefined> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    const line = (await sh('ps', ['-eo', 'pid,args'])).split('\n').find((l) => isTcpdumpWriting(l, `/lab-runs/${LAB}/`) && isTcpdumpWriting(l, `/${file}`));
    // Started: tcpdump writes the pcap header once its capture is open (the file is its fd 3).
    const pid = line ? Number(line.trim().split(/\s+/)[0]) : undefined;
    if (pid && pcapStarted(pid)) return pid;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

const holderVerb = () => {
  try {
    return (JSON.parse(readFileSync(join(STATE_ROOT, `${LAB}.lock`), 'utf8')) as { verb: string }).verb;
  } catch {
    return undefined;
  }
};

describe.skipIf(!root)('failures name what failed', () => {
  beforeAll(async () => {
    await lab(['down', LAB]);
    const up = await lab(['up', 'nodeport', '--name', LAB]);
    expect(up.exitCode, up.stderr).toBe(0);
  });
  afterAll(async () => {
    const pid = await workloadPid().catch(() => undefined);
    if (pid && processState(pid) === 'T') process.kill(pid, 'SIGCONT');
    await lab(['down', LAB]);
  });

  it('a tcpdump killed under verify is named, with its namespace and signal, instead of "no packet of this connection"', async () => {
    const verify = startLab(['verify', LAB, '--json']);
    const pid = await capturePid('node1-eth0.pcap');
    expect(pid, 'the capture on node1:eth0 never started').toBeDefined();
    process.kill(pid!, 'SIGKILL');
    const r = await verify;
    expect(r.exitCode, String(r.stderr)).toBe(1);
    const report = JSON.parse(String(r.stdout)) as VerifyResult;
    const failed = report.paths.flatMap((p) => p.steps).filter((s) => s.status === 'fail');
    expect(failed.length).toBeGreaterThan(0);
    const atPoint = failed.filter((s) => s.at === 'node1:eth0');
    expect(atPoint.length).toBeGreaterThan(0);
    for (const s of atPoint) expect(s.seen).toMatch(new RegExp(`^capture failed: tcpdump at node1:eth0 \\(namespace \\S+\\) ended before the traffic did \\(killed by SIGKILL\\)`));
    // Every failure blames the capture, none the packet path.
    for (const s of failed) expect(s.seen, `${s.step} at ${s.at}`).toMatch(/^(capture failed|cannot tell): tcpdump at node1:eth0 /);
  });

  it('a verify with every capture whole passes again', async () => {
    const r = await lab(['verify', LAB]);
    expect(r.exitCode, r.stdout.slice(-2000)).toBe(0);
  });

  it('a SIGSTOPped workload process: verify and kill refuse at once, naming it and kill -CONT', async () => {
    const pid = await workloadPid();
    process.kill(pid, 'SIGSTOP');
    try {
      let started = performance.now();
      const v = await lab(['verify', LAB]);
      const verifyMs = performance.now() - started;
      expect(v.exitCode, v.stderr).toBe(5);
      expect(v.stderr).toContain(`workload process (pid ${pid}, serving every pod) is stopped (state T`);
      expect(v.stderr).toContain(`kill -CONT ${pid}`);
      expect(verifyMs).toBeLessThan(5000);

      started = performance.now();
      const k = await lab(['kill', LAB, 'web-2']);
      expect(k.exitCode, k.stderr).toBe(5);
      expect(k.stderr).toContain('is stopped');
      expect(performance.now() - started).toBeLessThan(5000);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect((await lab(['verify', LAB])).exitCode).toBe(0);
  });

  it('a SIGKILLed workload process: verify refuses at once, naming it and the way out, which works', async () => {
    const pid = await workloadPid();
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const started = performance.now();
    const v = await lab(['verify', LAB]);
    expect(v.exitCode, v.stderr).toBe(5);
    expect(v.stderr).toContain(`workload process (pid ${pid}, serving every pod) is gone`);
    expect(v.stderr).toContain(`lab revive ${LAB} <pod>`);
    expect(performance.now() - started).toBeLessThan(5000);
    for (const pod of ['web-1', 'web-2']) {
      const r = await lab(['revive', LAB, pod]);
      expect(r.exitCode, r.stderr).toBe(0);
    }
    expect(await workloadPid()).not.toBe(pid);
    const again = await lab(['verify', LAB]);
    expect(again.exitCode, again.stdout.slice(-2000)).toBe(0);
  });

  it('a trace that meets a running scale waits for the lab, says so, and succeeds', async () => {
    const scale = startLab(['scale', LAB, 'web=4']);
    const until = Date.now() + 10_000;
    while (holderVerb() !== 'scale' && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    expect(holderVerb()).toBe('scale');
    // Held still, mid-change, so the trace surely meets it.
    process.kill(scale.pid!, 'SIGSTOP');
    const trace = startLab(['trace', LAB]);
    let traceEnded = false;
    void trace.finally(() => (traceEnded = true));
    await new Promise((r) => setTimeout(r, 1500));
    expect(traceEnded, 'the trace did not wait for the scale').toBe(false);
    process.kill(scale.pid!, 'SIGCONT');
    const [s, t] = await Promise.all([scale, trace]);
    expect(s.exitCode, String(s.stderr)).toBe(0);
    expect(t.exitCode, String(t.stderr)).toBe(0);
    expect(String(t.stderr)).toMatch(new RegExp(`waiting for lab ${LAB}: scale by pid ${scale.pid} holds it`));
    expect(String(t.stdout)).toContain('KUBE-NODEPORTS');
    expect((await lab(['scale', LAB, 'web=2'])).exitCode).toBe(0);
  });
});

