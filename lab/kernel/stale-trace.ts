import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { log } from '../log.js';
import type { ProxyMode } from '../trace/events.js';
import type { TraceSpec } from '../trace/rules.js';
import { removeTraceRules, type RawTableGuard } from './netfilter-trace.js';
import { isOurs, processCmdline, processStartTime, stopProcesses } from './processes.js';

/**
 * A trace that is SIGKILLed cannot clean up: its TRACE rules stay in every namespace and its
 * monitors keep running. So a trace records, before it starts anything, who it is, what rules
 * it puts where and which monitors it started; it deletes the record when it has cleaned up.
 * The next trace of the lab (one at a time, under the lab's lock) finds a record whose owner is
 * dead (pid and start time), removes those rules and stops those monitors, but only a monitor
 * that is provably the trace's: same pid and start time, a monitor's command, in the namespace.
 * `lab down` needs none of this: it stops every process in the lab's namespaces and deletes them.
 */

interface RecordedProcess {
  pid: number;
  startTime: string;
  ns: string;
}

export interface TraceRecord {
  pid: number;
  startTime: string;
  mode: ProxyMode;
  spec: TraceSpec;
  namespaces: string[];
  monitors: RecordedProcess[];
}

/** Write (or rewrite, once the monitors run) the running trace's record. */
export function recordTrace(file: string, rec: Omit<TraceRecord, 'pid' | 'startTime' | 'monitors'>, monitors: { ns: string; child: ChildProcess }[] = []): void {
  const procs = monitors.flatMap(({ ns, child }) => {
    const startTime = child.pid ? processStartTime(child.pid) : undefined;
    return child.pid && startTime ? [{ pid: child.pid, startTime, ns }] : [];
  });
  const record: TraceRecord = { pid: process.pid, startTime: processStartTime(process.pid) ?? '', ...rec, monitors: procs };
  writeFileSync(file, `${JSON.stringify(record)}\n`);
}

export const forgetTrace = (file: string) => rmSync(file, { force: true });

/** A monitor the dead trace started, still the same process, still in the lab's namespace. */
function isTraceMonitor(p: RecordedProcess): boolean {
  if (!isOurs(p)) return false;
  const cmd = processCmdline(p.pid);
  const monitorCommand = cmd.includes('xtables-monitor') || (cmd.includes('nft') && cmd.includes('monitor'));
  try {
    return monitorCommand && statSync(`/proc/${p.pid}/ns/net`).ino === statSync(`/run/netns/${p.ns}`).ino;
  } catch {
    return false;
  }
}

/** Clean up after a trace that died without doing so; resolves to what was swept (nothing if no dead trace left a record). */
export async function sweepDeadTrace(file: string, guard: RawTableGuard, liveNamespaces: string[]): Promise<{ rulesIn: string[]; monitors: number[] } | undefined> {
  let rec: TraceRecord;
  try {
    rec = JSON.parse(readFileSync(file, 'utf8')) as TraceRecord;
  } catch {
    return undefined;
  }
  if (rec.pid !== process.pid && isOurs(rec)) return undefined; // still running: not ours to sweep
  const monitors = (rec.monitors ?? []).filter(isTraceMonitor).map((m) => m.pid);
  await stopProcesses(monitors, 500);
  const rulesIn = (rec.namespaces ?? []).filter((ns) => liveNamespaces.includes(ns));
  await Promise.all(rulesIn.map((ns) => removeTraceRules(ns, rec.mode, rec.spec, guard)));
  forgetTrace(file);
  log.info({ owner: rec.pid, tag: rec.spec?.tag, monitors, rulesIn }, 'swept a dead trace');
  return { rulesIn, monitors };
}
