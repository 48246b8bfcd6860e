import type { Command } from 'commander';
import { checkTopologyFile } from '../api/check.js';
import { collectSet, collectUnset, dim, green, printJson, say } from './output.js';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('validate a topology file and its walkthrough without root, creating nothing (exit 0 valid, 2 not)')
    .argument('<topology>', 'scenario name or path to a .yaml file')
    .option('--set <key=value>', 'override a topology field, as lab up does', collectSet, {})
    .option('--unset <key>', 'remove a topology field (the same as --set key=)', collectUnset, {})
    .option('--json', 'machine-readable output')
    .action((topology: string, opts: { set: Record<string, string>; unset: Record<string, string>; json?: boolean }) => {
      const r = checkTopologyFile(topology, { ...opts.set, ...opts.unset });
      if (opts.json) return printJson(r);
      const c = r.counts;
      say(`${green('ok')} ${r.file}: lab ${r.lab}, ${c.nodes} nodes, ${c.clients} clients, ${c.pods} pods, ${c.services} services`);
      const w = r.walkthrough;
      if ('file' in w) say(`  walkthrough ${w.file}: ${w.paths} paths`);
      else {
        say(`  no walkthrough named: lab verify derives one, ${w.paths} paths (lab walkthrough ${topology} writes it out)`);
        for (const s of w.skipped) say(dim(`  not tried: ${s}`));
      }
    });
}
