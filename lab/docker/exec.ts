import { PassThrough, type Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { ExitCode, LabError } from '../errors.js';

export interface ExecOptions {
  /** Where the command's stdout and stderr go (default: this process's). */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  env?: string[];
  workdir?: string;
}

/** Exit code of a finished exec; the stream can end a moment before the engine records it. */
async function exitCodeOf(exec: Docker.Exec): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const info = await exec.inspect();
    if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) return info.ExitCode;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new LabError('the command in the lab container did not report an exit code', ExitCode.commandFailed);
}

const streamEnd = (stream: NodeJS.ReadableStream) =>
  new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });

/**
 * Run a command in a container, streaming its output as it comes, and return its exit code.
 * No stdin, no TTY: for `lab up`, `lab verify`, `lab down` and scripted checks.
 */
export async function execStream(container: Docker.Container, cmd: string[], opts: ExecOptions = {}): Promise<number> {
  const exec = await container.exec({
    Cmd: cmd,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    ...(opts.env ? { Env: opts.env } : {}),
    ...(opts.workdir ? { WorkingDir: opts.workdir } : {}),
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  container.modem.demuxStream(stream, stdout, stderr);
  await streamEnd(stream);
  return exitCodeOf(exec);
}

/** Run a command and collect its output (for status and name look-ups). */
export async function execCapture(
  container: Docker.Container,
  cmd: string[],
  opts: Omit<ExecOptions, 'stdout' | 'stderr'> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
  out.on('data', (c: Buffer) => chunks.out.push(c));
  err.on('data', (c: Buffer) => chunks.err.push(c));
  const code = await execStream(container, cmd, { ...opts, stdout: out, stderr: err });
  return { code, stdout: Buffer.concat(chunks.out).toString('utf8'), stderr: Buffer.concat(chunks.err).toString('utf8') };
}

/**
 * Run a command with this process's stdin attached: a TTY (raw mode, resized with the
 * window) when stdin and stdout are terminals, plain pipes otherwise, so that
 * `echo 'ip netns list' | lab docker shell` works too. Returns the exit code.
 */
export async function execInteractive(container: Docker.Container, cmd: string[], opts: Omit<ExecOptions, 'stdout' | 'stderr'> = {}): Promise<number> {
  const stdin = process.stdin;
  const tty = Boolean(stdin.isTTY && process.stdout.isTTY);
  const exec = await container.exec({
    Cmd: cmd,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: tty,
    Env: [...(tty ? [`TERM=${process.env.TERM ?? 'xterm'}`] : []), ...(opts.env ?? [])],
    ...(opts.workdir ? { WorkingDir: opts.workdir } : {}),
  });
  const stream = (await exec.start({ hijack: true, stdin: true, Tty: tty })) as Duplex;

  if (tty) stream.pipe(process.stdout);
  else container.modem.demuxStream(stream, process.stdout, process.stderr);

  const resize = () => {
    exec.resize({ h: process.stdout.rows, w: process.stdout.columns }).catch(() => undefined);
  };
  if (tty) {
    stdin.setRawMode(true);
    resize();
    process.stdout.on('resize', resize);
  }
  // When our stdin ends (a pipe), half-close the connection so the command sees EOF.
  stdin.pipe(stream);
  stdin.resume();

  try {
    await streamEnd(stream);
  } finally {
    stdin.unpipe(stream);
    if (tty) {
      stdin.setRawMode(false);
      process.stdout.off('resize', resize);
    }
    stdin.pause();
  }
  return exitCodeOf(exec);
}
