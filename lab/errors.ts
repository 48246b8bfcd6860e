/**
 * Exit codes, documented in the README. Every failure funnels through LabError
 * so the CLI can print one clear line and pick the code.
 */
export const ExitCode = {
  ok: 0,
  checkFailed: 1,
  badInput: 2,
  environment: 3, // not root, or a required tool is missing
  commandFailed: 4, // a kernel or system command failed while applying
  labState: 5, // lab not up, already up, or belongs to someone else
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class LabError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'LabError';
  }
}

/** One problem in a topology or walkthrough file, located as precisely as we can. */
export interface InputProblem {
  file: string;
  field: string;
  line?: number;
  message: string;
}

/** Where problems found in a file are reported: the file's path, and the line of a field when it is known. */
export interface ProblemLocator {
  readonly path: string;
  problem(path: readonly PropertyKey[], message: string): InputProblem;
}

export function formatProblem(p: InputProblem): string {
  const where = p.line ? `${p.file}:${p.line}` : p.file;
  return `${where}: ${p.field ? `${p.field}: ` : ''}${p.message}`;
}

export class InputError extends LabError {
  constructor(readonly problems: InputProblem[]) {
    super(problems.map(formatProblem).join('\n'), ExitCode.badInput, { problems });
    this.name = 'InputError';
  }
}

/** A command that failed: carries the command line, exit code and stderr. */
export class CommandError extends LabError {
  constructor(
    readonly command: string,
    readonly code: number | undefined,
    readonly stderr: string,
    readonly stdinPreview?: string,
  ) {
    const tail = stderr.trim().split('\n').slice(-6).join('\n');
    super(
      `command failed (exit ${code ?? 'signal'}): ${command}${tail ? `\n${tail}` : ''}`,
      ExitCode.commandFailed,
      { command, code, stderr },
    );
    this.name = 'CommandError';
  }
}

/**
 * A failed system call the lab did not expect (a full or read-only disk, a folder it may not
 * write, the working folder deleted): one line naming the call and the path, exit 3. Undefined
 * for anything else, which stays an unexpected error.
 */
export function fromSystemError(err: unknown): LabError | undefined {
  const e = err as NodeJS.ErrnoException;
  if (!(err instanceof Error) || typeof e.code !== 'string' || typeof e.syscall !== 'string') return undefined;
  const what = `${e.syscall}${e.path ? ` ${e.path}` : ''}`;
  const say = (message: string) => new LabError(message, ExitCode.environment, { code: e.code, syscall: e.syscall, path: e.path });
  if (e.syscall === 'uv_cwd') return say('the current folder no longer exists (was it deleted?): cd to a folder that exists and run it again');
  switch (e.code) {
    case 'EACCES':
    case 'EPERM':
      return say(`permission denied (${what}): kube-packet-lab needs root: run it with sudo`);
    case 'EROFS':
      return say(`read-only file system (${what}): the lab cannot write there`);
    case 'ENOSPC':
    case 'EDQUOT':
      return say(`no space left on the device (${what}): free some space and run it again`);
    case 'EMFILE':
    case 'ENFILE':
      return say(`too many open files (${what}): raise the limit (ulimit -n) or close some`);
    default:
      return undefined;
  }
}
