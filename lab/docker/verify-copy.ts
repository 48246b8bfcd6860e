import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ExecOptions } from './exec.js';
import { connectDocker, withDocker } from './engine.js';
import { execCapture } from './exec.js';
import { findLabContainer } from './container.js';
import { dockerLab, scenarioInContainer } from './runner.js';
import { untar } from './untar.js';

/**
 * `lab docker verify`: `lab verify` inside the container, writing its run folder to a path this
 * command chose, then that folder (report.html, the pcaps, report.json…) copied to the host
 * under lab-runs/<scenario>/<time>/, as a verify on the host writes it.
 */

export interface DockerVerifyResult {
  code: number;
  /** The run folder on the host; absent when the inner verify wrote none (or --out was given). */
  hostDir?: string;
}

const INNER_RUNS = '/tmp/kube-packet-lab-runs';

export async function dockerVerifyCopied(scenario: string, labArgs: string[] = [], output?: Pick<ExecOptions, 'stdout' | 'stderr'>, name?: string): Promise<DockerVerifyResult> {
  const own = labArgs.some((a) => a === '--out' || a.startsWith('--out='));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const inner = `${INNER_RUNS}/${stamp}`;
  const code = await dockerLab(['verify', scenarioInContainer(scenario), ...labArgs, ...(own ? [] : ['--out', inner])], output, name);
  if (own) return { code };
  const hostDir = resolve(join('lab-runs', safeName(scenario), stamp));
  const copied = await withDocker(async () => {
    const docker = await connectDocker();
    const c = await findLabContainer(docker, name);
    if (!c) return false;
    const container = docker.getContainer(c.id);
    let tar: Buffer;
    try {
      tar = await streamToBuffer(await container.getArchive({ path: `${inner}/.` }));
    } catch {
      return false; // the inner verify stopped before it made its folder
    }
    mkdirSync(hostDir, { recursive: true });
    untar(tar, hostDir);
    await execCapture(container, ['rm', '-rf', inner]);
    return true;
  });
  return copied ? { code, hostDir } : { code };
}

/** A folder name for the scenario: its name, or a file's base name without .yaml. */
const safeName = (scenario: string) => scenario.replace(/^.*\//, '').replace(/\.ya?ml$/, '').replace(/[^A-Za-z0-9._-]/g, '_') || 'docker';

function streamToBuffer(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((ok, fail) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => ok(Buffer.concat(chunks)));
    stream.on('error', fail);
  });
}
