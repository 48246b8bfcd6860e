import { LAB_MARKER_PREFIX, labMarker } from '../topology/names.js';
import { run } from './exec.js';

/** Every network namespace on the machine, by name. */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list'], { allowFailure: true });
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

/** The ownership marker on a namespace's loopback, or undefined when it has none. */
export async function namespaceMarker(ns: string): Promise<string | undefined> {
  const { stdout, exitCode } = await run('ip', ['-n', ns, '-o', 'link', 'show', 'lo'], { allowFailure: true });
  if (exitCode !== 0) return undefined;
  const m = /alias (\S+)/.exec(stdout);
  return m?.[1]?.startsWith(LAB_MARKER_PREFIX) ? m[1] : undefined;
}

/** Namespaces that carry this lab's marker: safe to delete even without a state file. */
export async function markedNamespaces(lab: string, candidates?: string[]): Promise<string[]> {
  const all = candidates ?? (await listNamespaces());
  const prefixed = all.filter((ns) => ns.startsWith(`${lab}-`));
  const marks = await Promise.all(prefixed.map(async (ns) => [ns, await namespaceMarker(ns)] as const));
  return marks.filter(([, mark]) => mark === labMarker(lab)).map(([ns]) => ns);
}

/** Delete namespaces in one batch; -force keeps going past ones already gone. */
export async function deleteNamespaces(names: string[]): Promise<void> {
  if (names.length === 0) return;
  await run('ip', ['-force', '-batch', '-'], { input: names.map((n) => `netns del ${n}`).join('\n'), allowFailure: true });
}

/** Process ids living in a namespace. */
export async function namespacePids(ns: string): Promise<number[]> {
  const { stdout } = await run('ip', ['netns', 'pids', ns], { allowFailure: true });
  return stdout.split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 0);
}
