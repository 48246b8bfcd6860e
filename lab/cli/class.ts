import type { Command } from 'commander';
import { classStatus, type ClassLab } from '../api/class.js';
import { bold, dim, green, printJson, red, say, yellow } from './output.js';

export function registerClass(program: Command): void {
  const cls = program.command('class').description("the instructor's view of a class: every lab on this machine");
  cls
    .command('status')
    .description('every lab: its scenario, whether it looks healthy, its learner\'s workshop step, attempts and hints, the faults in it and its break-and-fix challenge')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nThe health check is cheap (namespaces present, processes alive); lab workshop <lab> --check is the thorough one.')
    .action(async (opts: { json?: boolean }) => {
      const labs = await classStatus();
      if (opts.json) return printJson({ labs });
      printClass(labs);
    });
}

function workshopColumn(l: ClassLab): string {
  const w = l.workshop;
  if (!w) return dim('no workshop');
  if (w.step > w.total) return `done ${w.correct}/${w.total} right, ${w.skipped} skipped`;
  return `step ${w.step}/${w.total}${w.stepTitle ? ` ${w.stepTitle.slice(0, 32)}` : ''}`;
}

const OUTCOME: Record<NonNullable<ClassLab['challenge']>['outcome'], string> = { 'in-progress': 'on', fixed: 'solved', 'gave-up': 'given up', stopped: 'stopped' };

/** One line for a lab's latest challenge: its fault (the instructor sees it), hidden from the learner or not, attempts, solved. */
export function challengeLine(c: NonNullable<ClassLab['challenge']>): string {
  const outcome = c.solved ? green(OUTCOME[c.outcome]) : c.outcome === 'in-progress' ? yellow(OUTCOME[c.outcome]) : OUTCOME[c.outcome];
  return `challenge ${outcome}: ${c.fault} on ${c.host}, ${c.hidden ? 'still hidden' : 'found'}; ${c.attempts} attempts, ${c.fixChecks} fix checks, ${c.hints} hints`;
}

function printClass(labs: ClassLab[]): void {
  if (labs.length === 0) return say(dim('no labs on this machine: lab up <scenario> --name <lab> makes one'));
  const width = Math.max(3, ...labs.map((l) => l.lab.length));
  const scen = Math.max(8, ...labs.map((l) => l.scenario.length));
  say(bold(`${'lab'.padEnd(width)}  ${'scenario'.padEnd(scen)}  health   attempts hints  workshop`));
  for (const l of labs) {
    const health = l.healthy ? green('ok     ') : red('BROKEN ');
    const counts = l.workshop ? `${String(l.workshop.attempts).padStart(8)} ${String(l.workshop.hints).padStart(5)}` : `${''.padStart(8)} ${''.padStart(5)}`;
    say(`${l.lab.padEnd(width)}  ${l.scenario.padEnd(scen)}  ${health}  ${counts}  ${workshopColumn(l)}`);
    for (const p of l.problems) say(`${' '.repeat(width + 2)}${red('!')} ${p}`);
    if (l.faults.length) say(`${' '.repeat(width + 2)}${yellow('faults in:')} ${l.faults.join(', ')}`);
    if (l.challenge) say(`${' '.repeat(width + 2)}${challengeLine(l.challenge)}`);
  }
  const broken = labs.filter((l) => !l.healthy).length;
  say(dim(`${labs.length} labs, ${broken ? `${broken} not healthy (lab workshop <lab> --check tells more)` : 'all healthy'}`));
}
