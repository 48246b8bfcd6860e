import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { InputError } from '../errors.js';

/**
 * The lab runs as root and writes where the user asks (verify --out, capture --write): a folder
 * another user can write could hold a planted link (report.json -> /etc/shadow) or be swapped
 * under us. So folders are checked before use, and every file is opened without following a link.
 */

/** The users whose folders root may write into: root, and whoever ran sudo. */
function trustedOwners(): Set<number> {
  const owners = new Set([0]);
  if (typeof process.getuid === 'function') owners.add(process.getuid());
  const sudo = Number(process.env.SUDO_UID);
  if (Number.isInteger(sudo) && sudo >= 0) owners.add(sudo);
  return owners;
}

/**
 * Why another user could change what lands in `real` (a resolved folder), if one could: the
 * folder or one above it belongs to someone else, or is group/other-writable without the sticky
 * bit (which stops others renaming or deleting what is not theirs).
 */
export function untrustedFolder(real: string): string | undefined {
  const owners = trustedOwners();
  for (let dir = real; ; dir = dirname(dir)) {
    const st = lstatSync(dir);
    const where = dir === real ? 'it' : dir;
    if (!owners.has(st.uid)) return `${where} belongs to uid ${st.uid}, not root or you: that user could plant links where the lab writes`;
    if ((st.mode & 0o022) !== 0 && (st.mode & STICKY) === 0) return `${where} is writable by ${st.mode & 0o002 ? 'every user' : 'its group'} (mode ${(st.mode & 0o7777).toString(8)}): another user could plant links where the lab writes`;
    if (dir === dirname(dir)) return undefined;
  }
}

const STICKY = 0o1000;

const refuse = (path: string, message: string): never => {
  throw new InputError([{ file: path, field: '', message }]);
};

/**
 * Open a run file for writing, never through a link: a symbolic link, a hard link to another
 * file, a non-regular file or one another user owns is refused (exit 2), not followed. An
 * existing file of ours is emptied only after that check.
 */
export function openRunFile(path: string): number {
  let fd: number;
  try {
    // O_NONBLOCK: a planted FIFO must not hang the open.
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o644);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return refuse(path, 'is a symbolic link: the lab never writes through a link (it may have been planted); remove it or pick another folder');
    if (code === 'ENXIO' || code === 'EISDIR') return refuse(path, 'is not a regular file: remove it or pick another folder');
    throw err;
  }
  const st = fstatSync(fd);
  const why = !st.isFile() ? 'is not a regular file' : st.nlink !== 1 ? `is a hard link (${st.nlink} names) to a file that may not be the lab's` : st.uid !== (process.geteuid?.() ?? st.uid) ? `belongs to uid ${st.uid}` : undefined;
  if (why) {
    closeSync(fd);
    return refuse(path, `${why}: the lab writes only files of its own; remove it or pick another folder`);
  }
  ftruncateSync(fd, 0);
  return fd;
}

/** Write a whole run file (report, evidence, marker) through openRunFile. */
export function writeRunFile(path: string, data: string): void {
  const fd = openRunFile(path);
  try {
    const buf = Buffer.from(data);
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off);
  } finally {
    closeSync(fd);
  }
}
