import { connectDocker, LABEL_FILTER } from '../../lab/docker/index.js';
import { namespaceMarker } from '../../lab/kernel/netns.js';
import { namespaces, startLab } from './helpers.js';

/** What test/e2e/docker.test.ts makes, named so that it is recognisably the test's. */
export const IMAGE = 'kube-packet-lab:test';
export const CONTAINER = 'kube-packet-lab-test';
/** The lab inside the container gets its own name, so no lab on the host can share its namespaces' names. */
export const LAB = 'dockertest';

/**
 * The host's namespaces, except those of other labs (their loopback marker names another lab):
 * other test runs may bring labs up and down on the host meanwhile, and that is not ours to judge.
 */
export async function hostNamespacesNotOfOtherLabs(otherLabNamespaces: Set<string>): Promise<string[]> {
  const all = await namespaces();
  const marks = await Promise.all(all.map(async (ns) => [ns, await namespaceMarker(ns)] as const));
  for (const [ns, mark] of marks) if (mark && !mark.startsWith(`kube-packet-lab:${LAB}`)) otherLabNamespaces.add(ns);
  return all.filter((ns) => !otherLabNamespaces.has(ns));
}

/**
 * The test's lab containers, straight from the engine: the lab's label, and the test's name or
 * image (a tree without LAB_DOCKER_CONTAINER names its container kube-packet-lab).
 */
export async function testContainers(): Promise<{ id: string; name: string; state: string }[]> {
  const docker = await connectDocker();
  const list = await docker.listContainers({ all: true, filters: { label: [LABEL_FILTER] } });
  return list
    .filter((c) => c.Names.includes(`/${CONTAINER}`) || c.Labels['kube-packet-lab.image'] === IMAGE)
    .map((c) => ({ id: c.Id, name: c.Names[0]!.slice(1), state: c.State }));
}

export async function removeTestContainers(): Promise<void> {
  const docker = await connectDocker();
  for (const c of await testContainers()) await docker.getContainer(c.id).remove({ force: true, v: true }).catch(() => undefined);
}

/** Remove what the test made, whatever state a failure left: its containers, then its image. */
export async function cleanUp(): Promise<void> {
  await removeTestContainers();
  await (await connectDocker()).getImage(IMAGE).remove({ force: true }).catch(() => undefined);
}

export type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGKILL';

/** A moment to stop `lab docker up` at: a progress line it prints, then a delay. */
export interface Moment {
  after: 'start' | 'docker: starting container' | 'docker: lab up';
  delayMs: number;
  signal: StopSignal;
}

export interface Stopped {
  /** The CLI's exit code, or the signal that ended it. */
  exitCode: number | undefined;
  signal: string | undefined;
  /** The signal was sent (false: the command ended before the moment came). */
  sent: boolean;
  stdout: string;
  stderr: string;
}

/** Run lab docker up and send it a signal at a moment: after its line, plus the delay. */
export async function stopDockerUp(args: string[], moment: Moment): Promise<Stopped> {
  const child = startLab(['docker', 'up', ...args]);
  let sent = false;
  let seen = '';
  const fire = () =>
    setTimeout(() => {
      sent = child.exitCode === null && child.kill(moment.signal);
    }, moment.delayMs);
  if (moment.after === 'start') fire();
  else {
    child.stderr?.on('data', (chunk: Buffer) => {
      const before = seen.includes(moment.after);
      seen += chunk.toString('utf8');
      if (!before && seen.includes(moment.after)) fire();
    });
  }
  const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const r = await child;
  clearTimeout(killer);
  return { exitCode: r.exitCode ?? undefined, signal: r.signal ?? undefined, sent, stdout: String(r.stdout), stderr: String(r.stderr) };
}
