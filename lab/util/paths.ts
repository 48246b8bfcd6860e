import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';

/** Is path strictly inside root, after resolving "..", and symlinks of whatever part exists? */
export function insideRoot(root: string, path: string): boolean {
  const r = real(resolve(root));
  const p = real(resolve(path));
  const rel = relative(r, p);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/** The real path of the longest existing prefix, with the rest appended. */
function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : resolve(real(parent), path.slice(parent.length + 1));
  }
}
