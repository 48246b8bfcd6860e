import type { Command } from 'commander';
import { startLabUi } from '../api/ui.js';
import { ExitCode, LabError } from '../errors.js';
import { onInterrupt } from '../util/interrupt.js';
import { resolveLabName } from './lab-name.js';
import { dim, say } from './output.js';

export function registerUi(program: Command): void {
  program
    .command('ui')
    .description("a live page of a running lab in the browser: its topology, a request's walk hop by hop, the NAT node's conntrack, the workshop, the break-and-fix challenges")
    .argument('<lab>', 'a lab that is up (e.g. nodeport)')
    .option('--port <n>', 'the port on 127.0.0.1 (default: any free one)', (v) => Number(v))
    .addHelpText('after', '\nThe first line printed is the URL to open, with its token; every request without the token gets 401.\nIt listens on 127.0.0.1 only. Ctrl-C stops it.')
    .action(async (labArg: string, opts: { port?: number }) => {
      if (opts.port !== undefined && !Number.isInteger(opts.port)) throw new LabError(`--port: expected a port number`, ExitCode.badInput);
      const ui = await startLabUi(resolveLabName(labArg), { port: opts.port });
      // The URL is the first line: scripts read it.
      say(ui.url);
      say(dim('serving on 127.0.0.1 only; Ctrl-C stops it'));
      onInterrupt('lab ui server', () => ui.close());
      await new Promise<never>(() => undefined);
    });
}
