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

/** The namespace this thread started in: where it returns after each pod. */
const home = openSync('/proc/thread-self/ns/net', 'r');

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
