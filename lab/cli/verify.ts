import type { Command } from 'commander';
import { verify } from '../api/verify.js';
import { ExitCode } from '../errors.js';
import { renderReport } from '../verify/report.js';
import { resolveLabName } from './lab-name.js';
import { outputColumns, printJson, progress, progressDone, say } from './output.js';

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('send real traffic, capture it at every hop and check each documented step (exit 0 all pass, 1 a step failed)')
    .argument('<lab>', 'a lab that is up (e.g. nodeport)')
    .option('--out <dir>', 'folder for the pcaps and report (default lab-runs/<lab>/<time>)')
    .option('--walkthrough <name|file>', "check another walkthrough than the topology's own, e.g. nodeport-local-unready after lab kill; derived: the one its Services derive (the default when the topology names none)")
    .option('--wide', 'the full table, however wide the terminal (otherwise it fits COLUMNS, the terminal, or 80 columns)')
    .option('--trace', "attach the kernel's rule trace of one connection per path to report.html")
    .option('--json', 'machine-readable output')
    .action(async (labArg: string, opts: { out?: string; json?: boolean; walkthrough?: string; wide?: boolean; trace?: boolean }) => {
      const result = await verify(resolveLabName(labArg), { outDir: opts.out, walkthrough: opts.walkthrough, trace: opts.trace, onProgress: (t) => progress(`verify: ${t}`) });
      progressDone();
      if (opts.json) printJson(result);
      else say(renderReport(result, { columns: outputColumns(), wide: opts.wide, extra: [`report: ${result.html} (open it in a browser)`] }));
      if (result.failed > 0) process.exitCode = ExitCode.checkFailed;
    });
}
