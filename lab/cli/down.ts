import type { Command } from 'commander';
import { down, knownLabs } from '../api/down.js';
import { preflight } from '../kernel/preflight.js';
import { resolveLabName } from './lab-name.js';
import { green, printJson, say, yellow } from './output.js';

export function registerDown(program: Command): void {
  program
    .command('down')
    .description('remove a lab: its processes, namespaces and files (works after a crash too)')
    .argument('[lab]', 'lab name or scenario; omit to remove every lab on this machine')
    .option('--json', 'machine-readable output')
    .action(async (labArg: string | undefined, opts: { json?: boolean }) => {
      preflight(['ip']);
      const known = labArg ? { labs: [resolveLabName(labArg)], ignored: [] } : await knownLabs();
      const results = [];
      for (const lab of known.labs) results.push(await down(lab));
      // On stderr, so --json stays the list of removed labs.
      for (const i of known.ignored) process.stderr.write(`lab: left alone: namespace ${i.ns}, its marker "${i.marker}" names no lab this machine could have made\n`);
      if (opts.json) return printJson(results);
      if (results.length === 0) say('no labs are up');
      for (const r of results) {
        if (r.stateProblem) say(yellow(`note: ${r.stateProblem.replace(/: run .*$/, '')}; removed by its markers`));
        for (const p of r.refused) say(yellow(`refused to delete ${p}: outside the lab's folders`));
        for (const ns of r.leftAlone) say(yellow(`left alone: namespace ${ns}, listed in the state but not made by lab ${r.lab} (another lab's marker, or none)`));
        for (const w of r.warnings) say(yellow(`warning: ${w}`));
        say(`${green('down')} lab ${r.lab}: ${r.namespaces.length} namespaces, ${r.processes.length} ${r.processes.length === 1 ? 'process' : 'processes'} removed`);
      }
    });
}
