import { execa } from 'execa';

/**
 * tcpdump on one lab interface, started by the test (its own PID), ready once it says it
 * listens; `extra` are more options and the filter (e.g. ['-e', 'ip6']). The lines it printed
 * so far are in `lines`; `stop` ends it.
 */
export async function watch(ns: string, ifname: string, extra: string[]) {
  const proc = execa('ip', ['netns', 'exec', ns, 'tcpdump', '-i', ifname, '-nn', '-l', '--immediate-mode', ...extra], { reject: false });
  await new Promise<void>((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => d.toString().includes('listening on') && resolve());
    void proc.then((r) => reject(new Error(`tcpdump ended: ${r.stderr}`)));
  });
  const lines: string[] = [];
  proc.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  return {
    lines,
    stop: async () => {
      proc.kill('SIGTERM');
      await proc;
    },
  };
}
