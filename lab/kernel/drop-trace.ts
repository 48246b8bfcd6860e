import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { log } from '../log.js';
import { isOurs, processStartTime } from './processes.js';

/**
 * The kernel side of drop reasons: a tracefs instance of the trace's own (instances/<name>), so
 * two traces never share a buffer and the host's top-level tracing settings are never written.
 * Its events (skb:kfree_skb, net:net_dev_queue, net:netif_receive_skb) are enabled only while
 * the traffic is sent, and the instance is removed on every way out. It is recorded in the lab's
 * state folder before it is made, so the next trace or `lab down` removes what a SIGKILL left.
 */

const EVENTS = ['skb/kfree_skb', 'net/net_dev_queue', 'net/netif_receive_skb'] as const;
const RECORD_PREFIX = 'tracefs-instance.';
export const INSTANCE_PREFIX = 'kube-packet-lab-';

/** Where tracefs is mounted; mounted at its usual place when nothing mounted it yet (as perf and trace-cmd do). */
export function tracefsRoot(): string | undefined {
  const mounted = () =>
    readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f[2] === 'tracefs')
      .map((f) => f[1]!)
      .sort((a, b) => Number(b === '/sys/kernel/tracing') - Number(a === '/sys/kernel/tracing'))[0];
  const found = mounted();
  if (found) return found;
  spawnSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing'], { stdio: 'ignore', timeout: 5000 });
  return mounted();
}

export interface DropTrace {
  instance: string;
  /** Write a line into the instance's own buffer (the trace's window markers). */
  mark(text: string): void;
  /** Stop recording and return what was recorded. */
  read(): string;
  /** Disable and remove the instance (synchronous: safe in an 'exit' handler); idempotent. */
  close(): void;
}

interface InstanceRecord {
  instance: string;
  pid: number;
  startTime: string;
}

const write = (path: string, text: string) => writeFileSync(path, `${text}\n`);

/** Disable the instance's events and remove it; nothing if it is gone. */
export function removeInstance(instance: string): void {
  if (!existsSync(instance)) return;
  for (const e of EVENTS) {
    try {
      write(join(instance, 'events', e, 'enable'), '0');
    } catch {
      // removing the instance turns them off anyway
    }
  }
  try {
    rmdirSync(instance);
  } catch (err) {
    log.warn({ instance, err: String(err) }, 'could not remove a tracefs instance');
  }
}

/** The filter of the net events: only the lab's device names (the host's own traffic is mostly elsewhere). */
const nameFilter = (devices: string[]) => devices.map((d) => `name == "${d}"`).join(' || ');

/**
 * Make the trace's instance, record it in `stateDir`, and enable its events filtered to IPv4
 * (kfree_skb's protocol is the host-order ethertype; `ipv6`: IPv6's, 0x86dd, for an IPv6 trace)
 * and to the lab's device names.
 */
export function openDropTrace(stateDir: string, lab: string, devices: string[], ipv6 = false): DropTrace | { unavailable: string } {
  const root = tracefsRoot();
  if (!root || !existsSync(join(root, 'instances')) || !existsSync(join(root, 'events', 'skb', 'kfree_skb'))) return { unavailable: 'no tracefs with instances and skb:kfree_skb on this kernel' };
  const instance = join(root, 'instances', `${INSTANCE_PREFIX}${lab}-${randomBytes(4).toString('hex')}`);
  const record = join(stateDir, `${RECORD_PREFIX}${instance.split('/').pop()}.json`);
  const rec: InstanceRecord = { instance, pid: process.pid, startTime: processStartTime(process.pid) ?? '' };
  writeFileSync(record, `${JSON.stringify(rec)}\n`);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    removeInstance(instance);
    rmSync(record, { force: true });
  };
  try {
    mkdirSync(instance);
    write(join(instance, 'buffer_size_kb'), '1024');
    write(join(instance, 'events/skb/kfree_skb/filter'), `protocol == ${ipv6 ? 0x86dd : 0x0800}`);
    const names = nameFilter(devices);
    for (const e of EVENTS.slice(1)) if (names) write(join(instance, 'events', e, 'filter'), names);
    for (const e of EVENTS) write(join(instance, 'events', e, 'enable'), '1');
    log.debug({ instance }, 'drop trace instance enabled');
  } catch (err) {
    close();
    return { unavailable: `tracefs instance: ${(err as Error).message}` };
  }
  return {
    instance,
    mark: (text) => write(join(instance, 'trace_marker'), text),
    read: () => {
      write(join(instance, 'tracing_on'), '0');
      return readFileSync(join(instance, 'trace'), 'utf8');
    },
    close,
  };
}

/**
 * Remove the instances recorded in a lab's state folder: all of them (`lab down`), or only those
 * whose trace is dead (a new trace). Returns the instances removed.
 */
export function sweepInstances(stateDir: string, onlyDead: boolean): string[] {
  let files: string[];
  try {
    files = readdirSync(stateDir).filter((f) => f.startsWith(RECORD_PREFIX));
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const f of files) {
    let rec: InstanceRecord;
    try {
      rec = JSON.parse(readFileSync(join(stateDir, f), 'utf8')) as InstanceRecord;
    } catch {
      rmSync(join(stateDir, f), { force: true });
      continue;
    }
    if (onlyDead && isOurs(rec)) continue;
    // Only an instance of ours: its name is ours, under an instances folder.
    if (/\/instances\/kube-packet-lab-[a-z0-9-]+$/.test(rec.instance)) removeInstance(rec.instance);
    rmSync(join(stateDir, f), { force: true });
    removed.push(rec.instance);
  }
  if (removed.length) log.info({ removed }, 'removed tracefs instances a killed trace left');
  return removed;
}
