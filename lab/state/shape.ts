/**
 * Small shape checks for the lab's own state file, by hand rather than with zod: every verb
 * reads the state, and loading zod (its core alone is 167 KB of the bundled CLI, about 20 ms)
 * would be a large part of a short verb such as `lab down`. Topologies, walkthroughs and
 * workshops, which people write, keep zod and its line-numbered problems.
 *
 * A check throws ShapeProblem naming the path of the first value that does not fit.
 */
export type Path = (string | number)[];
export type Check = (value: unknown, at: Path) => void;

export class ShapeProblem extends Error {
  constructor(
    readonly path: Path,
    message: string,
  ) {
    super(message);
  }
}

const fail = (at: Path, message: string): never => {
  throw new ShapeProblem(at, message);
};
const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v);
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const str: Check = (v, at) => void (typeof v === 'string' || fail(at, `expected text, got ${kind(v)}`));
export const bool: Check = (v, at) => void (typeof v === 'boolean' || fail(at, `expected true or false, got ${kind(v)}`));
export const int =
  (min = Number.MIN_SAFE_INTEGER): Check =>
  (v, at) =>
    void ((Number.isSafeInteger(v) && (v as number) >= min) || fail(at, `expected a whole number of at least ${min}, got ${JSON.stringify(v)}`));

/** Text that passes `test`; `message` says what it should be. */
export const text =
  (test: (s: string) => boolean, message: string): Check =>
  (v, at) => {
    str(v, at);
    if (!test(v as string)) fail(at, `${JSON.stringify(v)} ${message}`);
  };

export const oneOf =
  (values: readonly string[]): Check =>
  (v, at) =>
    void (values.includes(v as string) || fail(at, `expected one of ${values.join(', ')}, got ${JSON.stringify(v)}`));

export const list =
  (item: Check): Check =>
  (v, at) => {
    if (!Array.isArray(v)) fail(at, `expected a list, got ${kind(v)}`);
    (v as unknown[]).forEach((x, i) => item(x, [...at, i]));
  };

/** An object used as a map: any keys, every value fitting `value`. */
export const dict =
  (value: Check): Check =>
  (v, at) => {
    if (!isPlainObject(v)) fail(at, `expected an object, got ${kind(v)}`);
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) value(x, [...at, k]);
  };

/** An object with exactly these keys: `required` must be there, `optional` may be; any other key is refused. */
export const object =
  (required: Record<string, Check>, optional: Record<string, Check> = {}): Check =>
  (v, at) => {
    if (!isPlainObject(v)) fail(at, `expected an object, got ${kind(v)}`);
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!(k in required) && !(k in optional)) fail([...at, k], 'unknown key');
    for (const [k, check] of Object.entries(required)) {
      if (o[k] === undefined) fail([...at, k], 'missing');
      check(o[k], [...at, k]);
    }
    for (const [k, check] of Object.entries(optional)) if (o[k] !== undefined) check(o[k], [...at, k]);
  };
