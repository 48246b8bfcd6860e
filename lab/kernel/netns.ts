import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { HOST_IFNAME, LAB_MARKER_PREFIX, labMarker } from '../topology/names.js';
import { mapLimit, NAMESPACE_CONCURRENCY } from '../util/pool.js';
import { run } from './exec.js';

/** Where `ip netns add` mounts each named namespace. */
export const NETNS_RUN_DIR = '/run/netns';

/** Every named network namespace on the machine: the files `ip netns add` mounts in /run/netns. */
export async function listNamespaces(): Promise<string[]> {
  try {
    return readdirSync(NETNS_RUN_DIR).sort();
  } catch {
    return [];
  }
}

const markerOf = (linkLine: string) => {
  const m = /alias (\S+)/.exec(linkLine);
  return m?.[1]?.startsWith(LAB_MARKER_PREFIX) ? m[1] : undefined;
};

/** The ownership marker on a namespace's loopback, or undefined when it has none. */
export async function namespaceMarker(ns: string): Promise<string | undefined> {
  const { stdout, exitCode } = await run('ip', ['-n', ns, '-o', 'link', 'show', 'lo'], { allowFailure: true });
  return exitCode === 0 ? markerOf(stdout) : undefined;
}

/**
 * The markers of many namespaces. A few: one `ip` each, some at a time. Many: one
 * `ip -all netns exec`, which visits every namespace in turn from a single process.
 */
export async function namespaceMarkers(names: string[]): Promise<Map<string, string | undefined>> {
  if (names.length <= NAMESPACE_CONCURRENCY) {
    return new Map(await mapLimit(names, NAMESPACE_CONCURRENCY, async (ns) => [ns, await namespaceMarker(ns)] as const));
  }
  const { stdout } = await run('ip', ['-all', 'netns', 'exec', 'ip', '-o', 'link', 'show', 'lo'], { allowFailure: true, timeoutMs: 300_000 });
  const all = new Map<string, string | undefined>();
  let current: string | undefined;
  for (const line of stdout.split('\n')) {
    const header = /^netns: (\S+)$/.exec(line);
    if (header) current = header[1];
    else if (current && line.includes(': lo:')) all.set(current, markerOf(line));
  }
  return new Map(names.map((ns) => [ns, all.get(ns)]));
}

/**
 * Each namespace's identity: the inode of its nsfs file, unique among living namespaces. The lab
 * records it right after `ip netns add`, so a namespace it made and crashed before marking is
 * told from one someone else made later under the same name.
 */
export function namespaceInodes(names: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const ns of names) {
    try {
      out.set(ns, statSync(`${NETNS_RUN_DIR}/${ns}`).ino);
    } catch {
      /* not there */
    }
  }
  return out;
}

/**
 * The namespaces a lab may delete among `candidates`: those marked as its own, and those without
 * any marker whose identity is the one the lab recorded when it made them. One marked by another
 * lab, or unmarked and not recorded (someone's `ip netns add`), is never the lab's.
 */
export async function ownedNamespaces(lab: string, candidates: readonly string[], recordedIds: Readonly<Record<string, number>> = {}): Promise<string[]> {
  const marks = await namespaceMarkers([...candidates]);
  const inodes = namespaceInodes(candidates.filter((ns) => marks.get(ns) === undefined));
  return candidates.filter((ns) => {
    const mark = marks.get(ns);
    if (mark !== undefined) return mark === labMarker(lab);
    // CLAIMED: the lab claimed the name while no namespace had it, and a signal came before it could record what it made.
    return inodes.has(ns) && (recordedIds[ns] === inodes.get(ns) || recordedIds[ns] === CLAIMED);
  });
}

/**
 * The identity recorded for a namespace name the lab claimed (under the machine-wide claim lock,
 * while no namespace had that name) and is about to create: no real nsfs inode is 0.
 */
export const CLAIMED = 0;

/**
 * After a failed `ip -batch` of creations: the namespaces its lines made before the failing one
 * (ip stops at the first failure and says "Command failed -:<line>").
 */
export function createdBeforeFailure(batch: readonly string[], stderr: string): string[] {
  const m = /Command failed -:(\d+)/.exec(stderr);
  if (!m) return [];
  return batch
    .slice(0, Number(m[1]) - 1)
    .map((line) => /^netns add (\S+)$/.exec(line)?.[1])
    .filter((ns): ns is string => ns !== undefined);
}

/** Namespaces that carry this lab's marker: safe to delete even without a state file. */
export async function markedNamespaces(lab: string, candidates?: string[]): Promise<string[]> {
  const all = candidates ?? (await listNamespaces());
  const marks = await namespaceMarkers(all.filter((ns) => ns.startsWith(`${lab}-`)));
  return [...marks].filter(([, mark]) => mark === labMarker(lab)).map(([ns]) => ns);
}

/**
 * Delete each pod namespace's eth0 first: that destroys its veth pair at once, while the
 * namespace itself dies later in the kernel's cleanup work, with the node-side end still holding
 * its name and index. A pod of the same name added right after would fail with "File exists".
 */
export async function deletePodNamespaces(names: string[]): Promise<void> {
  await mapLimit(names, NAMESPACE_CONCURRENCY, (ns) => run('ip', ['-n', ns, 'link', 'del', HOST_IFNAME], { allowFailure: true }));
  await deleteNamespaces(names);
}

/** Delete namespaces in batches of one `ip -force -batch` each; -force keeps going past ones already gone. */
export async function deleteNamespaces(names: string[]): Promise<void> {
  for (let i = 0; i < names.length; i += 500) {
    const chunk = names.slice(i, i + 500);
    await run('ip', ['-force', '-batch', '-'], { input: chunk.map((n) => `netns del ${n}`).join('\n'), allowFailure: true, timeoutMs: 300_000 });
  }
}

/**
 * Process ids living in any of these namespaces, as `ip netns pids` finds them (a process's
 * /proc/<pid>/ns/net names the namespace's inode), but in one pass over /proc for all of them
 * instead of one `ip` per namespace.
 */
export function namespacesPids(namespaces: string[]): number[] {
  const inodes = new Set<number>();
  for (const ns of namespaces) {
    try {
      inodes.add(statSync(`${NETNS_RUN_DIR}/${ns}`).ino);
    } catch {
      /* gone already */
    }
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`));
      if (m && inodes.has(Number(m[1]))) pids.push(pid);
    } catch {
      /* exited, or not ours to read */
    }
  }
  return pids;
}

/** Process ids living in a namespace. */
export async function namespacePids(ns: string): Promise<number[]> {
  return namespacesPids([ns]);
}
