import type { Command } from 'commander';
import { down, knownLabs } from '../api/down.js';
import { preflight } from '../kernel/preflight.js';
import { resolveLabName } from './lab-name.js';
import { green, printJson, say } from './output.js';

export function registerDown(program: Command): void {
  program
    .command('down')
    .description('remove a lab: its processes, namespaces and files (works after a crash too)')
    .argument('[lab]', 'lab name or scenario; omit to remove every lab on this machine')
    .option('--json', 'machine-readable output')
    .action(async (labArg: string | undefined, opts: { json?: boolean }) => {
      preflight(['ip']);
      const labs = labArg ? [resolveLabName(labArg)] : await knownLabs();
      const results = [];
      for (const lab of labs) results.push(await down(lab));
      if (opts.json) return printJson(results);
      if (results.length === 0) say('no labs are up');
      for (const r of results) say(`${green('down')} lab ${r.lab}: ${r.namespaces.length} namespaces, ${r.processes.length} processes removed`);
    });
}
