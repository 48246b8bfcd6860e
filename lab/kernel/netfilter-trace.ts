import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { ExitCode, LabError } from '../errors.js';
import { parseNftMonitor, parseXtablesMonitor, type MonitorParse, type ProxyMode } from '../trace/events.js';
import { iptablesTraceRuleCount, iptablesTraceRules, nftFamily, nftTraceTable, readsWithNft, type TraceSpec } from '../trace/rules.js';
import { runIn, spawnIn, stopChild } from './exec.js';

/**
 * The kernel side of `lab trace`: a monitor per namespace (xtables-monitor --trace in iptables
 * mode, nft monitor in nftables mode) and the temporary rules that mark one connection. Every
 * step waits for the kernel's own signal (the monitor printing our rule's arrival or removal),
 * never for a fixed time.
 */

export interface TraceMonitor {
  ns: string;
  child: ChildProcess;
  text: string;
  /** What the monitor wrote to stderr (why it exited, if it did). */
  stderr: string;
  /** Arrival time of each line (ms since start), for ordering. */
  stamps: number[];
  parse(): MonitorParse;
}

const WAIT_MS = 10_000;

export function startMonitor(ns: string, mode: ProxyMode, spec: TraceSpec, t0: number): TraceMonitor {
  // stdbuf: the monitors print with stdio, which a pipe would otherwise block-buffer.
  const nft = readsWithNft(mode, spec);
  // iptables mode over IPv6: with handles (-a), so the walk can give each rule as ip6tables-save prints it.
  const args = nft ? ['-oL', 'nft', ...(mode === 'iptables' ? ['-a'] : []), 'monitor'] : ['-oL', 'xtables-monitor', '--trace', '--event'];
  const child = spawnIn(ns, 'stdbuf', args, ['ignore', 'pipe', 'pipe']);
  const m: TraceMonitor = {
    ns,
    child,
    text: '',
    stderr: '',
    stamps: [],
    parse: () => (nft ? parseNftMonitor : parseXtablesMonitor)(m.text, spec.tag, m.stamps),
  };
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    const now = performance.now() - t0;
    const chunk = partial + d.toString();
    const lines = chunk.split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      m.text += `${l}\n`;
      m.stamps.push(now);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (m.stderr = (m.stderr + d.toString()).slice(-2000)));
  return m;
}

const exitReason = (m: TraceMonitor) => ` (${m.child.signalCode ?? `exit ${m.child.exitCode}`}${m.stderr.trim() ? `: ${m.stderr.trim()}` : ''})`;

/** Resolve once every monitor's output satisfies the test; fail if one exits or 5 s pass. */
export function untilMonitors(monitors: TraceMonitor[], test: (p: MonitorParse) => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const dead = monitors.find((m) => m.child.exitCode !== null || m.child.signalCode !== null);
      if (dead) return done(new LabError(`the trace monitor in ${dead.ns} exited before it ${what}${exitReason(dead)}`, ExitCode.commandFailed));
      if (monitors.every((m) => test(m.parse()))) done();
    };
    const timer = setTimeout(() => done(new LabError(`the trace monitors did not report that they ${what} within ${WAIT_MS / 1000} s`, ExitCode.commandFailed)), WAIT_MS);
    const listeners = monitors.map((m) => {
      const l = () => check();
      m.child.stdout!.on('data', l);
      m.child.on('exit', l);
      return () => {
        m.child.stdout!.off('data', l);
        m.child.off('exit', l);
      };
    });
    const done = (err?: Error) => {
      clearTimeout(timer);
      listeners.forEach((off) => off());
      if (err) reject(err);
      else resolve();
    };
    check();
  });
}

/**
 * A monitor hears only the changes made after it subscribed, and prints nothing when it has. So
 * announce a throwaway table (added and deleted at once) until the monitor reports it: from then
 * on it sees every change, our trace rules included. Without this, a monitor that subscribed a
 * moment after the rules went in never saw them arrive.
 */
export async function untilMonitorListens(m: TraceMonitor): Promise<void> {
  const marker = `lab-listen-${process.pid}`;
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    await runIn(m.ns, 'nft', ['-f', '-'], { input: `add table ip ${marker}\ndelete table ip ${marker}\n` });
    if (await heard(m, marker, 200)) return;
    if (m.child.exitCode !== null || m.child.signalCode !== null) throw new LabError(`the trace monitor in ${m.ns} exited before it was listening${exitReason(m)}`, ExitCode.commandFailed);
    if (Date.now() > deadline) throw new LabError(`the trace monitor in ${m.ns} did not start listening within ${WAIT_MS / 1000} s`, ExitCode.commandFailed);
  }
}

/** Whether the monitor printed `marker` already, or does within `ms`. */
function heard(m: TraceMonitor, marker: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (m.text.includes(marker)) return resolve(true);
    const finish = (yes: boolean) => {
      clearTimeout(timer);
      m.child.stdout!.off('data', listener);
      resolve(yes);
    };
    // Registered after startMonitor's own listener, so m.text already holds the new lines.
    const listener = () => m.text.includes(marker) && finish(true);
    const timer = setTimeout(() => finish(m.text.includes(marker)), ms);
    m.child.stdout!.on('data', listener);
  });
}

export const expectedAdds = (mode: ProxyMode, spec: TraceSpec) => (mode === 'nftables' ? 1 : iptablesTraceRuleCount(spec));

/**
 * iptables mode: the raw table is shared by the lab's traces (one at a time, under the lab's lock)
 * and by anyone's own raw rules. `madeRaw(ns)` is a marker file saying a trace created the
 * namespace's raw table, so the trace that empties it deletes it, and a raw table that was there
 * before any trace is never deleted.
 */
export interface RawTableGuard {
  madeRaw: (ns: string) => string;
}

// Run inside the namespace; $1 is the namespace's made-raw marker, the iptables-restore payload
// arrives on stdin. IPv6: ip6tables and its own raw table (table ip6 raw), with a marker of its own.
const ADD_RULES = (v6: boolean) => `nft list table ${v6 ? 'ip6' : 'ip'} raw >/dev/null 2>&1 || : > "$1"; exec ${v6 ? 'ip6' : 'ip'}tables-restore --noflush`;
const REMOVE_RULES = (v6: boolean) => {
  const [f, tool] = v6 ? ['ip6', 'ip6tables'] : ['ip', 'iptables'];
  return `${tool}-restore --noflush; if [ -e "$1" ] && ! ${tool}-save -t raw | grep -q "^-A "; then nft delete table ${f} raw && rm -f "$1"; fi`;
};

const script = (guard: RawTableGuard, ns: string, spec: TraceSpec, text: (v6: boolean) => string) => ['-c', text(spec.ipv6 === true), 'sh', `${guard.madeRaw(ns)}${spec.ipv6 ? '.ip6' : ''}`];

export async function addTraceRules(ns: string, mode: ProxyMode, spec: TraceSpec, guard: RawTableGuard): Promise<void> {
  if (mode === 'nftables') await runIn(ns, 'nft', ['-f', '-'], { input: nftTraceTable(spec) });
  else await runIn(ns, 'sh', script(guard, ns, spec, ADD_RULES), { input: iptablesTraceRules(spec, '-A') });
}

/** Remove the trace's rules; in iptables mode also the raw table, if a trace made it and no rule is left in it. */
export async function removeTraceRules(ns: string, mode: ProxyMode, spec: TraceSpec, guard: RawTableGuard): Promise<void> {
  if (mode === 'nftables') await runIn(ns, 'nft', ['delete', 'table', nftFamily(spec), spec.tag], { allowFailure: true });
  else await runIn(ns, 'sh', script(guard, ns, spec, REMOVE_RULES), { input: iptablesTraceRules(spec, '-D'), allowFailure: true });
}

/**
 * The same removal, synchronously, for a process that is exiting (Ctrl-C, SIGTERM): an 'exit'
 * handler cannot wait for promises.
 */
export function removeTraceRulesSync(ns: string, mode: ProxyMode, spec: TraceSpec, guard: RawTableGuard): void {
  const sync = (file: string, args: string[], input?: string) => spawnSync('ip', ['netns', 'exec', ns, file, ...args], { input, stdio: ['pipe', 'ignore', 'ignore'], timeout: 5000 });
  if (mode === 'nftables') sync('nft', ['delete', 'table', nftFamily(spec), spec.tag]);
  else sync('sh', script(guard, ns, spec, REMOVE_RULES), iptablesTraceRules(spec, '-D'));
}

/** Stop a monitor by its pid and wait for it. */
export const stopMonitor = (m: TraceMonitor): Promise<void> => stopChild(m.child, 'SIGTERM', 2000);
