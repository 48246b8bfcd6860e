/** A --set value, read as a YAML scalar would be: true/false, an integer, or else the text itself. */
export function overrideValue(raw: string): unknown {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (/^-?\d+$/.test(raw)) return Number(raw);
  return raw;
}
