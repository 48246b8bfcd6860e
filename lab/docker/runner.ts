import { existsSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import type Docker from 'dockerode';
import { ExitCode, LabError } from '../errors.js';
import { PROJECT_ROOT } from '../util/project.js';
import { findLabContainer, labContainerNames, removeLabContainer, type LabContainer } from './container.js';
import { DEFAULT_IMAGE, LAB_CLI_IN_CONTAINER, WORKDIR, connectDocker, dockerEndpoint, nameFlag, withDocker } from './engine.js';
import { execCapture, execInteractive, execStream, type ExecOptions } from './exec.js';
import { inspectImage, removeImage, type ImageInfo } from './image.js';
import { execLabInside } from './inner.js';

/**
 * The Docker path, as a programmatic API: one long-running container (labelled
 * kube-packet-lab=1) in which the ordinary `lab` commands run. The CLI in
 * lab/cli/docker.ts is a thin layer over these functions.
 */

/** Environment forwarded to the `lab` commands inside. */
export function innerEnv(): string[] {
  // LAB_RELAYED_BY: the inner CLI's output is shown on the host, whose own next: line names `lab docker …`.
  return [...['LAB_LOG_LEVEL', 'NO_COLOR'].filter((k) => process.env[k] !== undefined).map((k) => `${k}=${process.env[k]}`), 'LAB_RELAYED_BY=lab docker'];
}

/**
 * A scenario is a name (topologies/<name>.yaml in the image) or a path. A path on the
 * host means something inside the image only when it lies in this project: map it there.
 */
export function scenarioInContainer(scenario: string): string {
  const looksLikePath = scenario.includes('/') || /\.ya?ml$/.test(scenario);
  if (!looksLikePath) return scenario;
  const abs = resolve(scenario);
  if (!existsSync(abs) || !statSync(abs).isFile()) return scenario; // a path inside the container
  const rel = relative(PROJECT_ROOT, abs);
  if (rel.startsWith('..') || isAbsolute(rel)) {
    throw new LabError(
      `${scenario} is outside the project: the lab image holds only ${PROJECT_ROOT}/topologies (put the file there and run lab docker up --rebuild)`,
      ExitCode.badInput,
    );
  }
  return `${WORKDIR}/${rel}`;
}

async function requireContainer(docker: Docker, name?: string): Promise<LabContainer> {
  const c = await findLabContainer(docker, name);
  const n = nameFlag(name);
  if (!c) throw new LabError(`no lab container${name ? ` named ${name}` : ''}: run "lab docker up <scenario>${n}" first`, ExitCode.labState);
  if (c.state !== 'running') {
    throw new LabError(`the lab container ${c.name} is ${c.state}: run "lab docker down${n}", then "lab docker up <scenario>${n}"`, ExitCode.labState);
  }
  return c;
}

/** Run any `lab` command inside the container; returns its exit code. */
export function dockerLab(args: string[], output?: Pick<ExecOptions, 'stdout' | 'stderr'>, name?: string): Promise<number> {
  return withDocker(async () => {
    const docker = await connectDocker();
    const c = await requireContainer(docker, name);
    return execLabInside(docker.getContainer(c.id), args, { env: innerEnv(), ...output });
  });
}

/** `lab verify <scenario>` inside the container: 0 pass, 1 fail, as the inner command says. */
export function dockerVerify(scenario: string, labArgs: string[] = [], output?: Pick<ExecOptions, 'stdout' | 'stderr'>, name?: string): Promise<number> {
  return dockerLab(['verify', scenarioInContainer(scenario), ...labArgs], output, name);
}

/** Namespaces inside the lab container (`ip netns list` there). */
export async function containerNamespaces(docker: Docker, c: LabContainer): Promise<string[]> {
  if (c.state !== 'running') return [];
  const { code, stdout } = await execCapture(docker.getContainer(c.id), ['ip', 'netns', 'list']);
  if (code !== 0) return [];
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean)
    .sort();
}

/** Which namespace `lab docker shell <node>` means: an exact name, or <lab>-<node>. */
export function pickNamespace(namespaces: string[], target: string, lab?: string): string {
  if (lab) {
    const ns = `${lab}-${target}`;
    if (namespaces.includes(ns)) return ns;
    throw new LabError(`no namespace ${ns} in the lab container (it has: ${namespaces.join(', ') || 'none'})`, ExitCode.labState);
  }
  if (namespaces.includes(target)) return target;
  const matches = namespaces.filter((ns) => ns.endsWith(`-${target}`));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new LabError(`"${target}" is in several labs (${matches.join(', ')}): pick one with --lab`, ExitCode.badInput);
  }
  throw new LabError(`no namespace for "${target}" in the lab container (it has: ${namespaces.join(', ') || 'none'})`, ExitCode.labState);
}

export interface DockerShellOptions {
  /** Lab name, when more than one lab is up. */
  lab?: string;
  /** Run this command (with bash -c) instead of an interactive shell. */
  command?: string;
  /** `--name N`: the Docker lab kube-packet-lab-N. */
  name?: string;
}

/**
 * A shell in the container, or in one of the lab's namespaces there
 * (`ip netns exec <lab>-<node> bash`). Returns the shell's exit code.
 */
export function dockerShell(node?: string, opts: DockerShellOptions = {}): Promise<number> {
  return withDocker(async () => {
    const docker = await connectDocker();
    const c = await requireContainer(docker, opts.name);
    const shell = ['bash', ...(opts.command !== undefined ? ['-c', opts.command] : [])];
    let cmd = shell;
    if (node) {
      const ns = pickNamespace(await containerNamespaces(docker, c), node, opts.lab);
      cmd = ['ip', 'netns', 'exec', ns, ...shell];
    }
    return execInteractive(docker.getContainer(c.id), cmd, { workdir: WORKDIR });
  });
}

export interface DockerDownResult {
  /** No lab container existed. */
  absent: boolean;
  container?: LabContainer;
  /** Exit code of `lab down` inside (absent when the container was not running). */
  labDownCode?: number;
  removedImage?: string;
}

/** `lab down` inside, then remove the container (and with removeImage, its image). */
export function dockerDown(
  opts: { removeImage?: boolean; output?: Pick<ExecOptions, 'stdout' | 'stderr'>; name?: string } = {},
): Promise<DockerDownResult> {
  return withDocker(async () => {
    const docker = await connectDocker();
    const c = await findLabContainer(docker, opts.name);
    if (!c) return { absent: true };
    let labDownCode: number | undefined;
    if (c.state === 'running') {
      labDownCode = await execStream(docker.getContainer(c.id), [...LAB_CLI_IN_CONTAINER, 'down'], { env: innerEnv(), ...opts.output });
    }
    // Removing the container ends every process and namespace in it, whatever `lab down` said.
    await removeLabContainer(docker, c.id);
    const result: DockerDownResult = { absent: false, container: c, ...(labDownCode !== undefined ? { labDownCode } : {}) };
    if (opts.removeImage && (await removeImage(docker, c.image))) result.removedImage = c.image;
    return result;
  });
}

export interface DockerStatus {
  engine: { endpoint: string; version: string; apiVersion: string };
  image: { tag: string; info?: ImageInfo };
  container?: LabContainer & { namespaces: string[]; labs: string[] };
  /** Every lab container on the engine, this one too (each `lab docker … --name N` has its own). */
  containers: string[];
}

/** Engine, image and container, and the labs and namespaces up inside. */
export function dockerStatus(opts: { image?: string; name?: string } = {}): Promise<DockerStatus> {
  return withDocker(async () => {
    const docker = await connectDocker();
    const version = await docker.version();
    const c = await findLabContainer(docker, opts.name);
    const tag = opts.image ?? c?.image ?? DEFAULT_IMAGE;
    const info = await inspectImage(docker, tag);
    const status: DockerStatus = {
      engine: { endpoint: dockerEndpoint().description, version: version.Version, apiVersion: version.ApiVersion },
      image: { tag, ...(info ? { info } : {}) },
      containers: await labContainerNames(docker),
    };
    if (c) {
      const namespaces = await containerNamespaces(docker, c);
      let labs: string[] = [];
      if (c.state === 'running') {
        // One folder per lab; the per-lab lock files beside them are not labs.
        const { stdout } = await execCapture(docker.getContainer(c.id), ['find', '/run/kube-packet-lab', '-mindepth', '1', '-maxdepth', '1', '-type', 'd', '-printf', '%f\n']);
        labs = stdout.split('\n').filter(Boolean).sort();
      }
      status.container = { ...c, namespaces, labs };
    }
    return status;
  });
}
