import { parse } from 'yaml';
import { InputError, type InputProblem } from '../errors.js';

/**
 * A --set value, read as YAML would read it: a flow list or map ("[10.240.0.100]",
 * "{a: 1}") becomes that list or map; otherwise true/false, an integer, or else the text itself.
 * `expr` is the whole --set argument, named when the value is not valid YAML.
 */
export function overrideValue(raw: string, expr = raw): unknown {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (/^-?\d+$/.test(raw)) return Number(raw);
  if (/^\s*[[{]/.test(raw)) {
    try {
      return parse(raw, { maxAliasCount: 0 }) as unknown;
    } catch (err) {
      const first = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.replace(/:\s*$/, '');
      throw new InputError([{ file: `--set ${expr}`, field: '', message: `not a YAML flow list or map: ${first}` }]);
    }
  }
  return raw;
}

/** A field a --set replaced, and the --set argument that did it. */
export interface OverriddenField {
  field: string;
  expr: string;
}

/**
 * Problems found at or below a field a --set replaced came from that --set, not from the file:
 * they are reported at the --set argument (no line of the file).
 */
export function blameOverrides(problems: InputProblem[], overridden: OverriddenField[]): InputProblem[] {
  return problems.map((p) => {
    const by = overridden.find((o) => p.field === o.field || p.field.startsWith(`${o.field}.`) || p.field.startsWith(`${o.field}[`));
    return by ? { file: `--set ${by.expr}`, field: p.field, message: p.message } : p;
  });
}
