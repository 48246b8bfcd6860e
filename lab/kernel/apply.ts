import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';
import { log } from '../log.js';
import type { Plan, WorkloadPlan } from '../plan/plan.js';
import { WORKLOAD_MARKER } from '../workload/marker.js';
import { DNS_WORKLOAD_SCRIPT, WORKLOAD_SCRIPT } from '../util/project.js';
import { run, runIn } from './exec.js';
import { processStartTime } from './processes.js';
import type { ProcessRecord } from '../state/store.js';

/** Create namespaces and veth pairs in one host-level batch; every link is born inside a lab namespace. */
export async function createNamespaces(plan: Plan): Promise<void> {
  await run('ip', ['-batch', '-'], { input: plan.createBatch.join('\n') });
}

/** Links, addresses and routes: one `ip -n NS -batch -` per namespace, all namespaces at once. */
export async function configureNamespaces(plan: Plan): Promise<void> {
  await Promise.all(plan.namespaces.map((n) => run('ip', ['-n', n.ns, '-batch', '-'], { input: n.batch.join('\n') })));
}

/** sysctls, written inside each namespace with one command per namespace that needs any. */
export async function setSysctls(plan: Plan): Promise<void> {
  await Promise.all(
    plan.namespaces
      .filter((n) => Object.keys(n.sysctls).length > 0)
      .map((n) => runIn(n.ns, 'sysctl', ['-q', '-w', ...Object.entries(n.sysctls).map(([k, v]) => `${k}=${v}`)])),
  );
}

/** kube-proxy's rules: one iptables-restore per node, as kube-proxy applies a sync. */
export async function applyRules(plan: Plan): Promise<void> {
  await Promise.all(plan.iptables.map((r) => runIn(r.ns, 'iptables-restore', ['--noflush'], { input: r.payload })));
}

/**
 * Files `ip netns exec` bind-mounts into a namespace (each pod's resolv.conf), each in a folder
 * named after one of this lab's namespaces. `up` records the folders in the state first and
 * has already refused folders holding anything else (see foreignNamespaceFiles).
 */
export function writeNamespaceFiles(plan: Plan): void {
  for (const f of plan.files) {
    mkdirSync(f.dir, { recursive: true });
    writeFileSync(f.path, f.content);
  }
}

/** Anything already in the folders the lab would create and later remove: not ours to delete. */
export function foreignNamespaceFiles(plan: Plan): string[] {
  return plan.files.flatMap((f) => {
    try {
      return readdirSync(f.dir).map((name) => `${f.dir}/${name}`);
    } catch {
      return [];
    }
  });
}

/** Start each pod's workload inside its namespace; resolve once it says it is listening. */
export async function startWorkloads(plan: Plan, logDir: string): Promise<ProcessRecord[]> {
  mkdirSync(logDir, { recursive: true });
  return Promise.all(plan.workloads.map((w) => startWorkload(w, join(logDir, `${w.pod}.log`))));
}

function startWorkload(w: WorkloadPlan, logPath: string): Promise<ProcessRecord> {
  const script = w.kind === 'dns' ? DNS_WORKLOAD_SCRIPT : WORKLOAD_SCRIPT;
  const args = ['netns', 'exec', w.ns, process.execPath, script, WORKLOAD_MARKER, '--pod', w.pod, '--node', w.node, '--ip', w.ip, '--ports', w.ports.join(','), ...w.extraArgs];
  // `ip netns exec` execs the workload, so the pid we get is the workload's own.
  // stderr goes to a log file the learner can read; stdout carries only the ready line.
  const logFd = openSync(logPath, 'a');
  const child = spawn('ip', args, { detached: true, stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(`no ready line within 10 s`), 10_000);
    const fail = (why: string) => {
      clearTimeout(timer);
      try {
        if (child.pid) process.kill(child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      reject(new LabError(`workload of pod ${w.pod} did not start: ${why} (see ${logPath})`, ExitCode.commandFailed, { command: ['ip', ...args].join(' ') }));
    };
    const onEarlyExit = (code: number | null) => fail(`exited with ${code}`);
    child.on('exit', onEarlyExit);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (!out.includes('\n')) return;
      clearTimeout(timer);
      child.off('exit', onEarlyExit);
      child.stdout!.destroy();
      child.unref();
      const pid = child.pid!;
      log.debug({ pod: w.pod, pid }, 'workload ready');
      resolve({ pod: w.pod, ns: w.ns, pid, startTime: processStartTime(pid) ?? '', ports: w.ports });
    });
  });
}
