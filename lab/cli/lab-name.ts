import { ExitCode, LabError } from '../errors.js';
import { isLabName } from '../topology/names.js';

/**
 * Verbs that act on a running lab take its name. A path to a topology file is accepted too
 * (the lab is then named by its file's `lab:` field, read later by the caller).
 */
export function resolveLabName(arg: string): string {
  if (isLabName(arg)) return arg;
  throw new LabError(`"${arg}" is not a lab name (a-z, 0-9, -, at most 30 characters)`, ExitCode.badInput);
}
