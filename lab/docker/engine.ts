import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { ExitCode, LabError } from '../errors.js';
import { which } from '../kernel/preflight.js';

/** Names shared by the image, the container and the commands that find them. */
export const LABEL = 'kube-packet-lab';
export const LABEL_FILTER = `${LABEL}=1`;
/** Container labels that record how it was made. */
export const LABEL_IMAGE = `${LABEL}.image`;
export const LABEL_PRIVILEGED = `${LABEL}.privileged`;
/** The one lab container's name; LAB_DOCKER_CONTAINER gives a test run a container of its own. */
export const CONTAINER_NAME = process.env.LAB_DOCKER_CONTAINER ?? 'kube-packet-lab';
/**
 * The container of a named Docker lab (`lab docker … --name N`): several per engine, each its own
 * container, kube-packet-lab-N; without a name, the one default container. Pure.
 */
export function containerNameFor(name?: string): string {
  if (name === undefined) return CONTAINER_NAME;
  if (!CONTAINER_SUFFIX.test(name)) {
    throw new LabError(`--name "${name}": must be 1-40 lower-case letters, digits and dashes, starting with a letter or digit (the container is ${CONTAINER_NAME}-<name>)`, ExitCode.badInput);
  }
  return `${CONTAINER_NAME}-${name}`;
}
const CONTAINER_SUFFIX = /^[a-z0-9][a-z0-9-]{0,39}$/;

/** " --name N" for the hints a named Docker lab's commands print; "" for the default one. */
export const nameFlag = (name?: string) => (name === undefined ? '' : ` --name ${name}`);
export const DEFAULT_IMAGE = process.env.LAB_DOCKER_IMAGE ?? 'kube-packet-lab:latest';
/** Where the project lives inside the image (see the Dockerfile). */
export const WORKDIR = '/opt/kube-packet-lab';
export const LAB_CLI_IN_CONTAINER = ['node', `${WORKDIR}/dist/lab/cli/main.js`];

const PING_TIMEOUT_MS = 10_000;

/** The engine endpoint: DOCKER_HOST when set, else the usual unix sockets. */
export function dockerEndpoint(): { socketPath?: string; description: string } {
  const host = process.env.DOCKER_HOST;
  if (host && !host.startsWith('unix://')) return { description: host };
  if (host) return { socketPath: host.slice('unix://'.length), description: host.slice('unix://'.length) };
  const candidates = ['/var/run/docker.sock', join(homedir(), '.docker', 'run', 'docker.sock')];
  const socketPath = candidates.find((p) => existsSync(p)) ?? candidates[0]!;
  return { socketPath, description: socketPath };
}

/** Turn a failed connection into one line that says what to do. */
export function engineError(err: unknown, endpoint: string): LabError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const installed = Boolean(which('dockerd') || which('docker'));
  if (code === 'ENOENT' && !installed) {
    return new LabError(
      `Docker is not installed (no ${endpoint}, no dockerd on PATH): install it with apt-get install -y docker.io, or run scripts/docker-engine.sh`,
      ExitCode.environment,
    );
  }
  if (code === 'ENOENT' || code === 'ECONNREFUSED') {
    return new LabError(
      `Docker is not running: nothing answers on ${endpoint} (start it with systemctl start docker, or scripts/docker-engine.sh)`,
      ExitCode.environment,
    );
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new LabError(
      `permission denied on ${endpoint}: run with sudo, or add your user to the docker group`,
      ExitCode.environment,
    );
  }
  if (code === 'ETIMEDOUT' || code === 'ABORT_ERR' || (err as Error | undefined)?.name === 'AbortError') {
    return new LabError(`Docker did not answer on ${endpoint} within ${PING_TIMEOUT_MS / 1000} s`, ExitCode.environment);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new LabError(`cannot reach Docker on ${endpoint}: ${message.split('\n')[0]}`, ExitCode.environment);
}

/** A dockerode client whose engine has answered a ping, or a one-line LabError. */
export async function connectDocker(): Promise<Docker> {
  const endpoint = dockerEndpoint();
  let docker: Docker;
  try {
    docker = endpoint.socketPath ? new Docker({ socketPath: endpoint.socketPath }) : new Docker();
  } catch (err) {
    throw engineError(err, endpoint.description);
  }
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), PING_TIMEOUT_MS);
  try {
    // The typings lack ping's options argument; dockerode accepts { abortSignal }.
    await (docker.ping as unknown as (opts: { abortSignal: AbortSignal }) => Promise<unknown>)({ abortSignal: abort.signal });
  } catch (err) {
    throw engineError(err, endpoint.description);
  } finally {
    clearTimeout(timer);
  }
  return docker;
}

/** HTTP status of a dockerode error (404 for "no such image/container"). */
export const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number } | undefined)?.statusCode;

/** The engine's own message, without dockerode's "(HTTP code 500) server error - " prefix. */
export function messageOf(err: unknown): string {
  const json = (err as { json?: { message?: string } } | undefined)?.json;
  const message = json?.message ?? (err instanceof Error ? err.message : String(err));
  return message.split('\n')[0]!.trim();
}

/** Any failure as a LabError: ours pass through, the engine's become one line. */
export function asLabError(err: unknown): LabError {
  if (err instanceof LabError) return err;
  return new LabError(`docker: ${messageOf(err)}`, ExitCode.commandFailed, { cause: String(err) });
}

/** Run Docker work so that whatever fails surfaces as a one-line LabError. */
export async function withDocker<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw asLabError(err);
  }
}
