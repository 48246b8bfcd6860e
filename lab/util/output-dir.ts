import { accessSync, constants, existsSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { untrustedFolder } from './run-file.js';

/**
 * Create a folder for a command's files (verify's run, capture's pcaps), or refuse (exit 2) a place no folder can be made: a file, a device,
 * a path under /proc, /sys or /dev, a parent that is a file or not writable, or a folder another user could write
 * (lab/util/run-file.ts).
 */
export function makeOutputDir(path: string, option?: string): string {
  const dir = resolve(path);
  const where = option ? `${option} ${path}` : dir;
  const refuse = (message: string): never => {
    throw new InputError([{ file: where, field: '', message }]);
  };
  const pseudo = ['/proc', '/sys', '/dev'].find((p) => dir === p || dir.startsWith(`${p}/`));
  if (pseudo) refuse(`is under ${pseudo}, a kernel file system: pick a folder for pcaps and the report`);
  let existing = dir;
  while (!existsSync(existing)) existing = dirname(existing);
  const real = realpathSync(existing);
  if (['/proc', '/sys', '/dev'].some((p) => real === p || real.startsWith(`${p}/`))) refuse(`leads into ${real}, a kernel file system: pick a folder for pcaps and the report`);
  if (!statSync(existing).isDirectory()) refuse(existing === dir ? 'is a file, not a folder' : `${existing} is a file, not a folder`);
  try {
    accessSync(existing, constants.W_OK);
  } catch {
    refuse(`${existing} is not writable`);
  }
  // Checked before anything is made in it, and again once the folder exists (it may have been swapped meanwhile).
  const untrusted = (folder: string) => {
    const why = untrustedFolder(folder);
    if (why) refuse(`${why}; pick a folder only root or you can write`);
  };
  untrusted(real);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    refuse(`cannot create it (${(err as NodeJS.ErrnoException).code})`);
  }
  untrusted(realpathSync(dir));
  return dir;
}
