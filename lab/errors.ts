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
