import { expect } from 'vitest';
import { ExitCode, InputError, type InputProblem } from '../../lab/errors.js';

/**
 * What the lab says about bad input: the problems of the InputError (exit 2) that `load`
 * throws, or [] when it loads. Any other error fails the test, so a crash never passes for
 * a refusal; callers that expect a refusal assert on the problems they expect.
 */
export function problemsOf(load: () => unknown): InputProblem[] {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).exitCode).toBe(ExitCode.badInput);
    return (err as InputError).problems;
  }
  return [];
}
