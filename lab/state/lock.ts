import { spawn } from 'node:child_process';
import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';
import { processStartTime } from '../kernel/processes.js';
import { trackChild } from '../util/interrupt.js';
import { STATE_ROOT, labExists } from './store.js';

/**
 * One verb at a time changes a lab. Every verb that changes one (up, down, scale, kill, revive,
 * verify) holds an exclusive flock(2) on <state root>/<lab>.lock for its whole run; reading verbs
 * take nothing. The kernel drops the lock when the holder's last descriptor closes, also when it
 * is SIGKILLed, so a crash never wedges a lab. The lock file sits beside the lab's folder (which
 * `down` deletes), and tells a waiting verb who holds the lab.
 *
 * Node has no flock: `flock(1)` locks the descriptor it inherits as fd 3, which is the same open
 * file description as ours, so the lock stays with us after flock exits.
 */

export interface LockHolder {
  pid: number;
  startTime: string;
  verb: string;
  since: string;
}

const lockPath = (lab: string) => join(STATE_ROOT, `${lab}.lock`);
/** How long a second verb waits for the first one, in seconds (LAB_LOCK_WAIT overrides). */
export const lockWaitSeconds = () => {
  const s = Number(process.env.LAB_LOCK_WAIT ?? '60');
  return Number.isFinite(s) && s >= 0 ? s : 60;
};

/** Locks this process holds, so a verb that calls another (up's rollback calls down) does not wait for itself. */
const held = new Map<string, number>();

/** Errors of a state root that is full or read-only: `down` goes on through them. */
const STATE_ROOT_UNWRITABLE = new Set(['EROFS', 'ENOSPC', 'EDQUOT']);

export interface LockOptions {
  /**
   * Given, the verb runs without the lock when the state root is full or read-only (told why,
   * in one line): `down` must be able to remove the kernel's objects then. Absent, that fails.
   */
  onStateRootError?: (warning: string) => void;
}

/** Run fn holding the lab's lock; wait a bounded time for another holder, then exit 5 naming it. */
export async function withLabLock<T>(lab: string, verb: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  if (held.has(lab)) return fn();
  let fd: number;
  try {
    fd = await acquire(lab, verb);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!opts.onStateRootError || code === undefined || !STATE_ROOT_UNWRITABLE.has(code)) throw err;
    opts.onStateRootError(`could not lock lab ${lab} in ${STATE_ROOT} (${code}): going on without the lock`);
    return fn();
  }
  held.set(lab, fd);
  try {
    return await fn();
  } finally {
    held.delete(lab);
    try {
      ftruncateSync(fd, 0); // no stale holder for the next reader
    } catch {
      /* a read-only or full root: the holder note stays, its pid is checked by lockHolder */
    }
    // A lab that is gone takes its lock file along; a waiter on the old file notices and retries.
    if (!labExists(lab)) {
      try {
        unlinkSync(lockPath(lab));
      } catch {
        /* never there, or already gone */
      }
    }
    closeSync(fd);
  }
}

/** Who holds the lab's lock now, if anyone claims to. */
export function lockHolder(lab: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(lockPath(lab), 'utf8')) as LockHolder;
    return typeof h.pid === 'number' && processStartTime(h.pid) === h.startTime ? h : undefined;
  } catch {
    return undefined;
  }
}

async function acquire(lab: string, verb: string): Promise<number> {
  mkdirSync(STATE_ROOT, { recursive: true });
  const path = lockPath(lab);
  const deadline = Date.now() + lockWaitSeconds() * 1000;
  for (;;) {
    const fd = openSync(path, 'a+');
    let got = await flock(fd, ['-n']);
    // flock -w 0 would wait forever: wait only when at least 0.1 s is left.
    const remaining = (deadline - Date.now()) / 1000;
    if (!got && remaining >= 0.1) got = await flock(fd, ['-w', remaining.toFixed(1)]);
    if (!got) {
      const holder = lockHolder(lab);
      closeSync(fd);
      const who = holder ? `${holder.verb} by pid ${holder.pid} since ${holder.since}` : 'another lab command holds it';
      throw new LabError(`lab ${lab} is busy: ${who} (waited ${lockWaitSeconds()} s; LAB_LOCK_WAIT sets how long)`, ExitCode.labState, { holder });
    }
    // The file we locked may have been removed by a `down` that held it: lock the new one then.
    if (sameFile(fd, path)) {
      const me: LockHolder = { pid: process.pid, startTime: processStartTime(process.pid) ?? '', verb, since: new Date().toISOString() };
      try {
        ftruncateSync(fd, 0);
        writeSync(fd, `${JSON.stringify(me)}\n`);
      } catch {
        /* a full state root: the lock holds without the note of who holds it */
      }
      return fd;
    }
    closeSync(fd);
  }
}

/**
 * Run fn holding an exclusive flock on `path` (created if missing), waiting up to `waitS` seconds
 * for another holder; `busy` is the error when the wait runs out. The kernel drops the lock when
 * this process exits, however it exits.
 */
export async function withFileLock<T>(path: string, waitS: number, busy: () => Error, fn: () => Promise<T>): Promise<T> {
  const fd = openSync(path, 'a+');
  try {
    if (!(await flock(fd, ['-w', String(waitS)]))) throw busy();
    return await fn();
  } finally {
    closeSync(fd);
  }
}

function sameFile(fd: number, path: string): boolean {
  try {
    return fstatSync(fd).ino === statSync(path).ino;
  } catch {
    return false;
  }
}

/** flock(1) on our descriptor: true once locked, false when busy (-n) or after the wait (-w). */
function flock(fd: number, mode: string[]): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = trackChild(spawn('flock', [...mode, '-x', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] }));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => reject(new LabError(`cannot run flock to lock the lab: ${err.message}`, ExitCode.environment)));
    child.on('exit', (code) => {
      if (code === 0) resolve(true);
      else if (code === 1 && !stderr.trim()) resolve(false);
      else reject(new LabError(`flock failed (exit ${code}): ${stderr.trim()}`, ExitCode.commandFailed));
    });
  });
}
