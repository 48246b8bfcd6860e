import type { Command } from 'commander';
import { apply } from '../api/apply.js';
import { resolveLabName } from './lab-name.js';
import { dim, green, printJson, progress, progressDone, say } from './output.js';

export function registerApply(program: Command): void {
  program
    .command('apply')
    .description('change a running lab to match an edited topology: Services, ports, endpoints and pods, with a partial sync of what changed')
    .argument('<lab>', 'a lab that is up')
    .argument('<topology>', 'the edited topology file (for the same lab)')
    .option('--json', 'machine-readable output')
    .action(async (labArg: string, file: string, opts: { json?: boolean }) => {
      const r = await apply(resolveLabName(labArg), file, { onStage: (stage, ms) => progress(`apply: ${stage} done (${ms} ms)`) });
      progressDone();
      if (opts.json) return printJson(r);
      const { services: s, pods: p } = r.diff;
      const list = (what: string, names: string[]) => (names.length ? [`${what} ${names.join(', ')}`] : []);
      const changes = [...list('services added', s.added), ...list('services changed', s.changed), ...list('services deleted', s.removed), ...list('pods added', p.added), ...list('pods deleted', p.removed), ...list('pods changed', p.changed), ...list('workloads restarted', p.restarted)];
      if (changes.length === 0) return say(`${green('apply')} lab ${r.lab}: ${r.file} changes nothing`);
      say(`${green('apply')} lab ${r.lab} from ${r.file} in ${r.ms} ms: ${changes.join('; ')}`);
      for (const n of r.rules) say(dim(`  ${n.node}: ${n.sync} sync of ${n.services} services, +${n.added.length} -${n.removed.length} chains, ${n.lines} lines in ${n.restoreMs} ms`));
      say(dim(`next: lab verify ${r.lab}; lab rules ${r.lab} ${r.rules[0]?.node ?? ''}`.trimEnd()));
    });
}
