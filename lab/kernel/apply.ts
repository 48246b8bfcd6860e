import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';
import { log } from '../log.js';
import { RESOLV_CONF_HEADER } from '../plan/dns.js';
import type { Plan, WorkloadPlan } from '../plan/plan.js';
import { WORKLOAD_MARKER } from '../workload/marker.js';
import { DNS_WORKLOAD_SCRIPT, WORKLOAD_SCRIPT } from '../util/project.js';
import { mapLimit, NAMESPACE_CONCURRENCY } from '../util/pool.js';
import { run, runIn } from './exec.js';
import { processStartTime } from './processes.js';
import type { ProcessRecord } from '../state/store.js';

/** Create namespaces and veth pairs in one host-level batch; every link is born inside a lab namespace. */
export async function createNamespaces(plan: Plan): Promise<void> {
  await run('ip', ['-batch', '-'], { input: plan.createBatch.join('\n') });
}

/** Links, addresses and routes: one `ip -n NS -batch -` per namespace, all namespaces at once. */
export async function configureNamespaces(plan: Plan): Promise<void> {
  await mapLimit(plan.namespaces, NAMESPACE_CONCURRENCY, (n) => run('ip', ['-n', n.ns, '-batch', '-'], { input: n.batch.join('\n') }));
}

/** sysctls, written inside each namespace with one command per namespace that needs any. */
export async function setSysctls(plan: Plan): Promise<void> {
  const withSysctls = plan.namespaces.filter((n) => Object.keys(n.sysctls).length > 0);
  await mapLimit(withSysctls, NAMESPACE_CONCURRENCY, (n) => runIn(n.ns, 'sysctl', ['-q', '-w', ...Object.entries(n.sysctls).map(([k, v]) => `${k}=${v}`)]));
}

interface IpLinkJson {
  ifname: string;
  flags?: string[];
  operstate?: string;
  linkinfo?: { info_kind?: string };
}

/**
 * Wait until every veth the plan touched is operationally up, or `timeoutMs` passes; returns
 * the links still down (normally none). A veth transmits only once the kernel has handled its
 * carrier-on event (linkwatch), which can lag `link set up` of its peer by up to a second;
 * until then it drops what it is given, so the first SYN or SYN-ACK of a connection is lost
 * and the connection takes a one-second retransmission to open. The plan gives every veth an
 * index distinct from its peer's, which makes that event urgent (see lab/plan/network.ts), so
 * this wait is normally a single look; it stays as the readiness signal.
 */
export async function waitForLinks(plan: Pick<Plan, 'namespaces'>, timeoutMs = 3000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let pending = plan.namespaces.map((n) => n.ns);
  let down: string[] = [];
  for (;;) {
    const results = await mapLimit(
      pending, NAMESPACE_CONCURRENCY, async (ns) => {
        const { stdout } = await run('ip', ['-n', ns, '-j', '-d', 'link', 'show'], { allowFailure: true });
        let links: IpLinkJson[] = [];
        try {
          links = JSON.parse(stdout || '[]') as IpLinkJson[];
        } catch {
          links = [];
        }
        const notUp = links.filter((l) => l.linkinfo?.info_kind === 'veth' && l.flags?.includes('UP') && l.operstate !== 'UP');
        return { ns, notUp: notUp.map((l) => `${ns}:${l.ifname}`) };
      },
    );
    pending = results.filter((r) => r.notUp.length > 0).map((r) => r.ns);
    down = results.flatMap((r) => r.notUp);
    if (pending.length === 0 || Date.now() >= deadline) return down;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** kube-proxy's rules: one iptables-restore per node, as kube-proxy applies a sync. */
export async function applyRules(plan: Plan): Promise<void> {
  await mapLimit(plan.iptables, NAMESPACE_CONCURRENCY, (r) => runIn(r.ns, 'iptables-restore', ['--noflush'], { input: r.payload }));
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

/**
 * Anything already in the folders the lab would create and later remove that is not ours to
 * delete. A resolv.conf carrying the lab's header is ours, left by a lab whose state was lost.
 */
export function foreignNamespaceFiles(plan: Plan): string[] {
  return plan.files.flatMap((f) => {
    try {
      return readdirSync(f.dir).map((name) => `${f.dir}/${name}`).filter((path) => !ourNamespaceFile(path));
    } catch {
      return [];
    }
  });
}

/** A resolv.conf the lab wrote (it carries the lab's header), left by a lab whose state was lost. */
export function ourNamespaceFile(path: string): boolean {
  try {
    return path.endsWith('/resolv.conf') && readFileSync(path, 'utf8').startsWith(`${RESOLV_CONF_HEADER}\n`);
  } catch {
    return false;
  }
}

/** Start each pod's workload inside its namespace; resolve once it says it is listening. */
export async function startWorkloads(plan: Plan, logDir: string): Promise<ProcessRecord[]> {
  mkdirSync(logDir, { recursive: true });
  return Promise.all(plan.workloads.map((w) => startWorkload(w, join(logDir, `${w.pod}.log`))));
}

function startWorkload(w: WorkloadPlan, logPath: string): Promise<ProcessRecord> {
  const script = w.kind === 'dns' ? DNS_WORKLOAD_SCRIPT : WORKLOAD_SCRIPT;
  const args = ['netns', 'exec', w.ns, process.execPath, script, WORKLOAD_MARKER, '--ns', w.ns, '--pod', w.pod, '--node', w.node, '--ip', w.ip, '--ports', w.ports.join(','), ...w.extraArgs];
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
