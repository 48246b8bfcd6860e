import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { ExitCode, LabError } from '../errors.js';
import { PROJECT_ROOT } from '../util/project.js';
import { statusOf } from './engine.js';

/** What goes into the build context: the Dockerfile's COPY sources, nothing else. */
const CONTEXT_ENTRIES = ['Dockerfile', 'package.json', 'package-lock.json', 'tsconfig.json', 'lab', 'scripts', 'topologies'];

export interface ImageInfo {
  id: string;
  tags: string[];
  created: string;
  sizeBytes: number;
}

export async function inspectImage(docker: Docker, tag: string): Promise<ImageInfo | undefined> {
  try {
    const info = await docker.getImage(tag).inspect();
    return { id: info.Id, tags: info.RepoTags ?? [], created: info.Created, sizeBytes: info.Size };
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

export interface BuildOptions {
  tag: string;
  /** The Dockerfile's BASE build argument; its own default when omitted. */
  base?: string;
  /**
   * Network for the build's RUN steps. 'host' lets apt and npm reach their registries
   * even when dockerd runs with --bridge=none; it changes nothing on the host.
   */
  networkMode?: string;
  noCache?: boolean;
  onProgress?: (line: string) => void;
}

export interface BuildResult {
  id: string;
  ms: number;
}

/** Build the lab image from the project's Dockerfile with dockerode (classic builder). */
export async function buildImage(docker: Docker, opts: BuildOptions): Promise<BuildResult> {
  const t0 = performance.now();
  const src = CONTEXT_ENTRIES.filter((e) => existsSync(join(PROJECT_ROOT, e)));
  if (!src.includes('Dockerfile')) {
    throw new LabError(`no Dockerfile in ${PROJECT_ROOT}: the lab image cannot be built from this install`, ExitCode.environment);
  }
  const stream = await docker.buildImage(
    { context: PROJECT_ROOT, src },
    {
      t: opts.tag,
      buildargs: opts.base ? { BASE: opts.base } : {},
      networkmode: opts.networkMode ?? 'host',
      nocache: opts.noCache ?? false,
      rm: true,
      forcerm: true,
    },
  );

  const tail: string[] = [];
  let id: string | undefined;
  let failure: string | undefined;
  const remember = (text: string) => {
    // eslint-disable-next-line no-control-regex
    for (const line of text.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '').split('\n')) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > 40) tail.shift();
      opts.onProgress?.(line);
    }
  };
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : resolve()),
      (event: { stream?: string; status?: string; error?: string; errorDetail?: { message?: string }; aux?: { ID?: string } }) => {
        if (event.stream) remember(event.stream);
        if (event.status) remember(event.status);
        if (event.aux?.ID) id = event.aux.ID;
        if (event.error) failure = event.errorDetail?.message ?? event.error;
      },
    );
  }).catch((err: unknown) => {
    failure ??= err instanceof Error ? err.message : String(err);
  });

  if (failure !== undefined || !id) {
    const reason = failure ?? 'the build finished without an image id';
    throw new LabError(
      `building image ${opts.tag} failed: ${reason.trim()}${tail.length ? `\n${tail.slice(-25).join('\n')}` : ''}`,
      ExitCode.commandFailed,
      { tail },
    );
  }
  return { id, ms: Math.round(performance.now() - t0) };
}

/** Remove an image by tag; true when one was removed. */
export async function removeImage(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).remove({ force: true });
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
}
