import type { Command } from 'commander';
import { capture } from '../api/capture.js';
import { formatLine } from '../capture/stream.js';
import { ExitCode, LabError } from '../errors.js';
import { resolveLabName } from './lab-name.js';
import { dim } from './output.js';

const number = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new LabError(`${flag} ${v}: expected a number`, ExitCode.badInput);
  return n;
};

export function registerCapture(program: Command): void {
  program
    .command('capture')
    .description('live capture at several points at once: one time-ordered stream, each line prefixed host:if, decoded as tcpdump does')
    .argument('<lab>', 'a lab that is up (e.g. nodeport)')
    .argument('<points...>', 'host:ifname (e.g. node1:eth0), or a host for all its interfaces')
    .option('--filter <expr>', 'a tcpdump filter, e.g. "tcp port 32000"')
    .option('--count <n>', 'stop after n packets in all', number('--count'))
    .option('--duration <s>', 'stop after s seconds (at most a day)', number('--duration'))
    .option('--write <dir>', 'also keep a pcap per point in dir (for Wireshark)')
    .action(async (labArg: string, points: string[], opts: { filter?: string; count?: number; duration?: number; write?: string }) => {
      const width = Math.max(...points.map((p) => (p.includes(':') ? p.length : p.length + 4)));
      const summary = await capture(resolveLabName(labArg), points, {
        ...opts,
        onReady: (labels) => process.stderr.write(dim(`capturing on ${labels.join(', ')}${opts.count ? `, ${opts.count} packets` : ''}${opts.duration ? `, ${opts.duration} s` : ''} (Ctrl-C to stop)\n`)),
        onLine: (l) => process.stdout.write(`${formatLine(l, width)}\n`),
        onPointEnded: (label, why) => process.stderr.write(`lab: tcpdump on ${label} ${why}; the other points go on\n`),
      });
      process.stderr.write(dim(`${summary.packets} packets${summary.files.length ? `; pcaps: ${summary.files.join(', ')}` : ''}\n`));
    });
}
