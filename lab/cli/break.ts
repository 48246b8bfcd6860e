import type { Command } from 'commander';
import { breakLab, faultsFor, repairLab } from '../api/break.js';
import { faultListing } from '../break/index.js';
import { ExitCode, LabError } from '../errors.js';
import { preflight } from '../kernel/preflight.js';
import { resolveLabName } from './lab-name.js';
import { bold, dim, green, printJson, say, yellow } from './output.js';

export function registerBreak(program: Command): void {
  program
    .command('break')
    .description('put a realistic fault into a live lab, for a class to find (lab repair undoes it)')
    .argument('[lab]', 'a lab that is up')
    .argument('[fault]', 'the fault (lab break --list shows them)')
    .option('--list', 'list the faults (with a lab: the ones that apply to it)')
    .option('--json', 'machine-readable output')
    .action(async (labArg: string | undefined, fault: string | undefined, opts: { list?: boolean; json?: boolean }) => {
      if (opts.list) return listFaults(labArg === undefined ? undefined : resolveLabName(labArg), opts.json);
      if (!labArg || !fault) throw new LabError('lab break needs a lab and a fault: lab break <lab> <fault> (lab break --list shows the faults)', ExitCode.badInput);
      preflight();
      const lab = resolveLabName(labArg);
      const r = await breakLab(lab, fault);
      if (opts.json) return printJson(r);
      say(`${yellow('broken')} lab ${lab}: ${fault}`);
      say(dim(`next: lab verify ${lab}   (lab repair ${lab} undoes it)`));
    });
  program
    .command('repair')
    .description('undo every fault lab break put into a lab (works after a crash too)')
    .argument('<lab>', 'a lab that is up')
    .option('--json', 'machine-readable output')
    .action(async (labArg: string, opts: { json?: boolean }) => {
      preflight();
      const lab = resolveLabName(labArg);
      const done = await repairLab(lab);
      if (opts.json) return printJson(done);
      if (done.length === 0) say(`lab ${lab} has no fault to repair`);
      for (const d of done) say(`${green('repaired')} lab ${lab}: ${d.fault} (${d.summary})`);
    });
}

function listFaults(lab: string | undefined, json?: boolean): void {
  const applying = lab ? new Set(faultsFor(lab).map((f) => f.name)) : undefined;
  const rows = faultListing().filter((f) => !applying || applying.has(f.name));
  if (json) return printJson(rows);
  if (lab) say(bold(`faults that apply to lab ${lab}:`));
  for (const f of rows) say(`${bold(f.name)}\n  ${f.description}\n  ${dim(`applies: ${f.appliesTo}`)}`);
}
