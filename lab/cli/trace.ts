import type { Command } from 'commander';
import { trace } from '../api/trace.js';
import { ExitCode, LabError } from '../errors.js';
import { renderTrace } from '../trace/render.js';
import { resolveLabName } from './lab-name.js';
import { printJson, progress, progressDone, say } from './output.js';

export function registerTrace(program: Command): void {
  program
    .command('trace')
    .description("send one new connection and show the kernel's own netfilter trace of it: every chain and rule on every node, with the addresses before and after each NAT")
    .argument('<lab>', 'a lab that is up (e.g. nodeport)')
    .option('--from <host>', "the client or pod that sends (default: the walkthrough's)")
    .option('--to <ip:port>', "where it sends (default: the walkthrough's, e.g. 10.240.0.4:32000)")
    .option('--proto <tcp|udp>', 'protocol', 'tcp')
    .option('--json', 'machine-readable output')
    .action(async (labArg: string, opts: { from?: string; to?: string; proto: string; json?: boolean }) => {
      if (opts.proto !== 'tcp' && opts.proto !== 'udp') throw new LabError(`--proto ${opts.proto}: expected tcp or udp`, ExitCode.badInput);
      const result = await trace(resolveLabName(labArg), { from: opts.from, to: opts.to, proto: opts.proto, onProgress: (t) => progress(`trace: ${t}`), onWait: (t) => process.stderr.write(`lab: ${t}\n`) });
      progressDone();
      if (opts.json) printJson(result);
      else say(renderTrace(result));
    });
}
