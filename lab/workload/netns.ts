/**
 * Network namespaces for the workload process: Node has no setns(2), so libc's is called
 * through koffi. setns changes the namespace of the calling thread only; a socket belongs to
 * the namespace its creating thread was in, so a pod's socket is opened while the main
 * thread stands in the pod's namespace, and the thread goes home afterwards.
 */
import { closeSync, openSync } from 'node:fs';
import koffi from 'koffi';

const CLONE_NEWNET = 0x40000000;
const NETNS_RUN_DIR = '/run/netns';

const libc = koffi.load('libc.so.6');
const setnsCall = libc.func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number;
const dup2Call = libc.func('int dup2(int oldfd, int newfd)') as (oldfd: number, newfd: number) => number;

/** The lab namespace this process lives in (see enterHome): where the thread returns after each pod. */
let home = -1;

/**
 * Move the main thread into the lab's namespace `ns` for good: the process is then found there
 * (/proc/<pid>/ns/net is the main thread's) by `lab down`'s sweep, as if it had been started there.
 */
export function enterHome(ns: string): void {
  const fd = openSync(`${NETNS_RUN_DIR}/${ns}`, 'r');
  setns(fd, ns);
  home = fd;
}

/** Make `path` (opened for appending) this process's stderr, where Node and our logs write. */
export function redirectStderr(path: string): void {
  const fd = openSync(path, 'a');
  if (dup2Call(fd, 2) < 0) throw new Error(`dup2(${path}) failed: errno ${koffi.errno()}`);
  closeSync(fd);
}

function setns(fd: number, what: string): void {
  if (setnsCall(fd, CLONE_NEWNET) !== 0) throw new Error(`setns(${what}) failed: errno ${koffi.errno()}`);
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Run `open` with the main thread inside network namespace `ns` until the promise it returns
 * settles: Node creates a listening socket on a later tick, so the thread must stay until
 * 'listening' fires. Calls are serialised: one namespace at a time.
 */
export function inNamespace<T>(ns: string, open: () => Promise<T>): Promise<T> {
  const run = async () => {
    if (home < 0) throw new Error('the workload process has no home namespace yet');
    const fd = openSync(`${NETNS_RUN_DIR}/${ns}`, 'r');
    try {
      setns(fd, ns);
      try {
        return await open();
      } finally {
        setns(home, 'home');
      }
    } finally {
      closeSync(fd);
    }
  };
  const result = queue.then(run, run);
  queue = result.catch(() => undefined);
  return result;
}
