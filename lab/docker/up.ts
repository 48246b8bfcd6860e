import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { ExitCode, LabError, type ExitCodeValue } from '../errors.js';
import { onInterrupt, once, throwIfInterrupted } from '../util/interrupt.js';
import { ensureRunning, findLabContainer, removeLabContainer, startLabContainer, type LabContainer } from './container.js';
import { DEFAULT_IMAGE, LAB_CLI_IN_CONTAINER, connectDocker, nameFlag, withDocker } from './engine.js';
import { execCapture, type ExecOptions } from './exec.js';
import { missingBaseAdvice } from './base-image.js';
import { buildImage, inspectImage } from './image.js';
import { execLabInside } from './inner.js';
import { innerEnv, scenarioInContainer } from './runner.js';

/**
 * `lab docker up`: build the image when needed, start (or reuse) the lab container, run
 * `lab up` in it. It ends with the lab up inside, or with nothing of its own left: a failed
 * inner `lab up` (which rolls its own lab back) or a stop signal removes the container this
 * command made; a container that was already running stays, without the lab it was asked for.
 */

export interface DockerUpOptions {
  /** Image tag to build and run (default kube-packet-lab:latest, or $LAB_DOCKER_IMAGE). */
  image?: string;
  /** BASE build argument (default $LAB_DOCKER_BASE, else the Dockerfile's own). */
  base?: string;
  /** Build even if the image exists. */
  rebuild?: boolean;
  noCache?: boolean;
  /** Network for the build's RUN steps (default host). */
  buildNetwork?: string;
  privileged?: boolean;
  /** `--name N`: the Docker lab's own container, kube-packet-lab-N (several per engine). */
  name?: string;
  /** Extra arguments for `lab up` inside, e.g. ['--name', 'np2']. */
  labArgs?: string[];
  /** Progress lines (image build steps, container start). */
  onProgress?: (text: string) => void;
  /** Where the inner `lab up` writes (default this process's stdout/stderr). */
  output?: Pick<ExecOptions, 'stdout' | 'stderr'>;
}

export interface DockerUpResult {
  image: string;
  built: boolean;
  buildMs?: number;
  container: LabContainer;
  /** The container was made by this call (false: an existing one was reused). */
  created: boolean;
  startMs: number;
  upMs: number;
}

/** The container this command made, removed once whichever of failure or signal asks first. */
function containerRollback(docker: Docker) {
  let id: string | undefined;
  let starting: Promise<unknown> = Promise.resolve();
  return {
    onCreated: (created: string) => {
      id = created;
    },
    /** Follow the start, so a rollback that comes while it is in flight waits for the id. */
    follow<T>(start: Promise<T>): Promise<T> {
      starting = start.catch(() => undefined);
      return start;
    },
    remove: once(async () => {
      await starting;
      if (id) await removeLabContainer(docker, id);
      return id !== undefined;
    }),
  };
}

/** What the inner `lab up` said on stderr, kept to be shown once: after success, or in the error. */
function stderrKeeper() {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

const LAB_EXIT_CODES: readonly number[] = Object.values(ExitCode);

/** One error that says what failed inside: the command, its exit code, its last stderr lines. */
export function innerUpFailed(args: string[], code: number, stderr: string, container: { name: string; removed: boolean }): LabError {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '').slice(-12);
  const said = lines.length ? `; its stderr:\n${lines.map((l) => `  ${l}`).join('\n')}` : ' and wrote nothing on stderr';
  const fate = container.removed
    ? `the container ${container.name}, made for it, is removed`
    : `the container ${container.name} was already running and stays`;
  const exitCode = (code > 0 && LAB_EXIT_CODES.includes(code) ? code : ExitCode.commandFailed) as ExitCodeValue;
  return new LabError(`"lab ${args.join(' ')}" failed inside the lab container (exit ${code})${said}\n${fate}`, exitCode, { code, stderr });
}

/** An existing container can serve only the same mode, and never a rebuild. */
function checkReusable(existing: LabContainer, opts: DockerUpOptions): void {
  if (opts.rebuild) {
    throw new LabError(
      `the lab container ${existing.name} is already running image ${existing.image}: run "lab docker down${nameFlag(opts.name)}" before --rebuild`,
      ExitCode.labState,
    );
  }
  if ((opts.privileged ?? false) !== existing.privileged) {
    throw new LabError(
      `the lab container ${existing.name} already runs ${existing.privileged ? 'with' : 'without'} --privileged: run "lab docker down${nameFlag(opts.name)}" first to change that`,
      ExitCode.labState,
    );
  }
}

/** Build the image when it is missing or a rebuild is asked for; its build time, if built. */
async function ensureImage(docker: Docker, image: string, opts: DockerUpOptions): Promise<number | undefined> {
  if (!opts.rebuild && (await inspectImage(docker, image))) return undefined;
  const base = opts.base ?? process.env.LAB_DOCKER_BASE;
  opts.onProgress?.(`docker: building image ${image}${base ? ` from ${base}` : ''}`);
  const result = await buildImage(docker, {
    tag: image,
    ...(base ? { base } : {}),
    ...(opts.buildNetwork ? { networkMode: opts.buildNetwork } : {}),
    noCache: opts.noCache ?? false,
    onProgress: (line) => opts.onProgress?.(`docker build: ${line}`),
  }).catch((err: unknown) => {
    const advice = err instanceof LabError ? missingBaseAdvice(base, err.message) : undefined;
    throw advice && err instanceof LabError ? new LabError(`${err.message.split('\n')[0]}\n${advice}`, err.exitCode, err.details) : err;
  });
  return result.ms;
}

/** Start a stopped container again; its namespaces are gone but its state files are not: clear them. */
async function reuse(docker: Docker, existing: LabContainer, opts: DockerUpOptions): Promise<LabContainer> {
  opts.onProgress?.(`docker: reusing container ${existing.name} (${existing.id.slice(0, 12)})`);
  await ensureRunning(docker, existing);
  if (existing.state !== 'running') await execCapture(docker.getContainer(existing.id), [...LAB_CLI_IN_CONTAINER, 'down']);
  return { ...existing, state: 'running' };
}

/** Build the image if needed, start (or reuse) the lab container, run `lab up` in it. */
export function dockerUp(scenario: string, opts: DockerUpOptions = {}): Promise<DockerUpResult> {
  return withDocker(async () => {
    const docker = await connectDocker();
    const image = opts.image ?? DEFAULT_IMAGE;
    const inner = scenarioInContainer(scenario);
    const existing = await findLabContainer(docker, opts.name);
    if (existing) checkReusable(existing, opts);
    const buildMs = existing ? undefined : await ensureImage(docker, image, opts);
    throwIfInterrupted();

    const rollback = containerRollback(docker);
    const forget = onInterrupt('remove the lab container this up made', rollback.remove);
    try {
      const t0 = performance.now();
      const privileged = opts.privileged ?? false;
      if (!existing) opts.onProgress?.(`docker: starting container from ${image}${privileged ? ' (privileged)' : ''}`);
      const container = existing
        ? await reuse(docker, existing, opts)
        : await rollback.follow(startLabContainer(docker, { image, privileged, onCreated: rollback.onCreated, ...(opts.name !== undefined ? { name: opts.name } : {}) }));
      const startMs = Math.round(performance.now() - t0);
      throwIfInterrupted();

      opts.onProgress?.(`docker: lab up ${scenario}`);
      const t1 = performance.now();
      const args = ['up', inner, ...(opts.labArgs ?? [])];
      const stderr = stderrKeeper();
      const code = await execLabInside(docker.getContainer(container.id), args, { env: innerEnv(), stdout: opts.output?.stdout, stderr: stderr.stream });
      throwIfInterrupted();
      if (code !== 0) throw innerUpFailed(args, code, stderr.text(), { name: container.name, removed: await rollback.remove() });
      (opts.output?.stderr ?? process.stderr).write(stderr.text());
      const upMs = Math.round(performance.now() - t1);
      return { image, built: buildMs !== undefined, ...(buildMs !== undefined ? { buildMs } : {}), container, created: !existing, startMs, upMs };
    } catch (err) {
      await rollback.remove();
      throw err;
    } finally {
      forget();
    }
  });
}
