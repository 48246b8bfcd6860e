import type Docker from 'dockerode';
import { ExitCode, LabError } from '../errors.js';
import { containerNameFor, LABEL, LABEL_FILTER, LABEL_IMAGE, LABEL_PRIVILEGED, WORKDIR, messageOf, statusOf } from './engine.js';

export interface LabContainer {
  id: string;
  name: string;
  image: string;
  imageId: string;
  state: string;
  status: string;
  privileged: boolean;
  created: string;
}

/**
 * The lab container, found by its label and name (so any directory, any checkout finds it,
 * and a container named otherwise, a test run's, is not this one).
 */
export async function findLabContainer(docker: Docker, name?: string): Promise<LabContainer | undefined> {
  const all = await docker.listContainers({ all: true, filters: { label: [LABEL_FILTER] } });
  const c = all.find((x) => x.Names.includes(`/${containerNameFor(name)}`));
  if (!c) return undefined;
  return {
    id: c.Id,
    name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
    image: c.Labels[LABEL_IMAGE] ?? c.Image,
    imageId: c.ImageID,
    state: c.State,
    status: c.Status,
    privileged: c.Labels[LABEL_PRIVILEGED] === '1',
    created: new Date(c.Created * 1000).toISOString(),
  };
}

/** The names of every lab container on the engine (the default one and each `--name N`), sorted. */
export async function labContainerNames(docker: Docker): Promise<string[]> {
  const all = await docker.listContainers({ all: true, filters: { label: [LABEL_FILTER] } });
  return all.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, '')).sort();
}

export interface StartOptions {
  image: string;
  /** --privileged instead of the least-privilege set below. */
  privileged?: boolean;
  /** Told the container's id as soon as it exists, so a rollback can remove it whatever comes next. */
  onCreated?: (id: string) => void;
  /** `--name N`: the container kube-packet-lab-N (see containerNameFor). */
  name?: string;
}

/**
 * Least privilege that lets the lab build namespaces inside the container:
 * - NET_ADMIN: links, addresses, routes, bridges, iptables rules, net.* sysctls;
 * - SYS_ADMIN: `ip netns add` mounts (--make-shared /run/netns, a bind mount per
 *   namespace) and `ip netns exec` enters a namespace with setns(); without it,
 *   `mount --make-shared /run/netns failed: Operation not permitted`;
 * - apparmor=unconfined: where AppArmor is active, the docker-default profile denies
 *   mount() even with SYS_ADMIN;
 * - seccomp=unconfined: Docker's default profile allows mount, unshare and setns once
 *   SYS_ADMIN is added, but engines and distributions ship their own profiles; unconfined
 *   keeps the lab independent of which one is in force;
 * - systempaths=unconfined: /proc/sys is read-only by default, and every namespace the
 *   lab makes needs its own sysctls (ip_forward, bridge-nf-call-iptables): without it,
 *   `sysctl: permission denied on key "net.ipv4.ip_forward"`. The docker CLI turns the
 *   option into empty MaskedPaths and ReadonlyPaths; the API takes only those;
 * - NetworkMode none: the lab's traffic stays between namespaces inside the container,
 *   so the container gets no interface toward the host at all.
 * Init: a small init as PID 1 reaps the workloads `lab up` leaves behind when its exec ends.
 */
export function hostConfig(privileged: boolean): Docker.HostConfig {
  const common: Docker.HostConfig = { NetworkMode: 'none', Init: true };
  if (privileged) return { ...common, Privileged: true };
  return {
    ...common,
    CapAdd: ['NET_ADMIN', 'SYS_ADMIN'],
    SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined'],
    MaskedPaths: [],
    ReadonlyPaths: [],
  };
}

/** Create and start the one long-running lab container. */
export async function startLabContainer(docker: Docker, opts: StartOptions): Promise<LabContainer> {
  const privileged = opts.privileged ?? false;
  const containerName = containerNameFor(opts.name);
  let container: Docker.Container;
  try {
    container = await docker.createContainer({
      name: containerName,
      Hostname: containerName,
      Image: opts.image,
      Cmd: ['sleep', 'infinity'],
      WorkingDir: WORKDIR,
      Labels: { [LABEL]: '1', [LABEL_IMAGE]: opts.image, [LABEL_PRIVILEGED]: privileged ? '1' : '0' },
      HostConfig: hostConfig(privileged),
    });
    opts.onCreated?.(container.id);
  } catch (err) {
    if (statusOf(err) === 409) {
      throw new LabError(
        `a container named ${containerName} exists but was not made by the lab (no ${LABEL_FILTER} label): remove or rename it first`,
        ExitCode.labState,
      );
    }
    throw new LabError(`cannot create the lab container: ${messageOf(err)}`, ExitCode.commandFailed);
  }
  try {
    await container.start();
  } catch (err) {
    await container.remove({ force: true }).catch(() => undefined);
    const message = messageOf(err);
    const hint = privileged ? ' (this engine may not allow --privileged: try without it)' : '';
    throw new LabError(`cannot start the lab container${hint}: ${message}`, ExitCode.environment);
  }
  const found = await findLabContainer(docker, opts.name);
  if (!found) throw new LabError('the lab container vanished right after it started', ExitCode.commandFailed);
  return found;
}

/** Start a stopped lab container again (its namespaces are gone: `lab up` rebuilds them). */
export async function ensureRunning(docker: Docker, c: LabContainer): Promise<void> {
  if (c.state === 'running') return;
  try {
    await docker.getContainer(c.id).start();
  } catch (err) {
    if (statusOf(err) !== 304) throw err; // 304: already started
  }
}

/** Stop and remove a container by id (its processes and namespaces end with it); gone already is fine. */
export async function removeLabContainer(docker: Docker, id: string): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: true, v: true });
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
}
