import type { Command } from 'commander';
import { derivedWalkthrough, derivedWalkthroughYaml } from '../api/derive.js';
import { writeRunFile } from '../util/run-file.js';
import { collectSet, collectUnset, say } from './output.js';

export function registerWalkthrough(program: Command): void {
  program
    .command('walkthrough')
    .description("the walkthrough lab verify derives from a topology (kube-proxy's semantics for every Service port and way in), as a file to edit")
    .argument('<lab|topology>', 'a running lab, a scenario name or a topology file')
    .option('-o, --out <file>', 'write it to this file (default: stdout)')
    .option('--set <key=value>', 'override a topology field, as lab up does', collectSet, {})
    .option('--unset <key>', 'remove a topology field (the same as --set key=)', collectUnset, {})
    .action((ref: string, opts: { out?: string; set: Record<string, string>; unset: Record<string, string> }) => {
      const d = derivedWalkthrough(ref, { ...opts.set, ...opts.unset });
      const text = derivedWalkthroughYaml(d);
      if (opts.out === undefined) return void process.stdout.write(text);
      writeRunFile(opts.out, text);
      say(`walkthrough: wrote ${opts.out} (${d.walkthrough.paths.length} paths); name it in the topology with walkthrough: <file beside it>`);
    });
}
