import { statSync } from 'node:fs';
import { LAB_MARKER_PREFIX, labMarker } from '../topology/names.js';
import { mapLimit, NAMESPACE_CONCURRENCY } from '../util/pool.js';
import { run } from './exec.js';

/** Where `ip netns` keeps its named namespaces (bind mounts of nsfs). */
export const NETNS_DIR = '/run/netns';

/** Every network namespace on the machine, by name. */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list'], { allowFailure: true });
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
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

/** Namespaces that carry this lab's marker: safe to delete even without a state file. */
export async function markedNamespaces(lab: string, candidates?: string[]): Promise<string[]> {
  const all = candidates ?? (await listNamespaces());
  const marks = await namespaceMarkers(all.filter((ns) => ns.startsWith(`${lab}-`)));
  return [...marks].filter(([, mark]) => mark === labMarker(lab)).map(([ns]) => ns);
}

/** Delete namespaces in batches of one `ip -force -batch` each; -force keeps going past ones already gone. */
export async function deleteNamespaces(names: string[]): Promise<void> {
  for (let i = 0; i < names.length; i += 500) {
    const chunk = names.slice(i, i + 500);
    await run('ip', ['-force', '-batch', '-'], { input: chunk.map((n) => `netns del ${n}`).join('\n'), allowFailure: true, timeoutMs: 300_000 });
  }
}

/** The inode of each named namespace (what /proc/<pid>/ns/net links to), for those that exist. */
export function namespaceInodes(names: string[]): Map<number, string> {
  const inodes = new Map<number, string>();
  for (const ns of names) {
    try {
      inodes.set(statSync(`${NETNS_DIR}/${ns}`).ino, ns);
    } catch {
      /* gone */
    }
  }
  return inodes;
}

/** Process ids living in a namespace. */
export async function namespacePids(ns: string): Promise<number[]> {
  const { stdout } = await run('ip', ['netns', 'pids', ns], { allowFailure: true });
  return stdout.split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 0);
}
