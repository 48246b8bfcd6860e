import type { Command } from 'commander';
import { graph, type GraphFormat } from '../api/graph.js';

export function registerGraph(program: Command): void {
  program
    .command('graph')
    .description('print the topology picture: namespaces, bridges, veth links, addresses, Services')
    .argument('<scenario|lab>', 'a running lab, a scenario name or a topology file')
    .option('--format <svg|mermaid|dot>', 'picture format', 'svg')
    .action((ref: string, opts: { format: string }) => {
      process.stdout.write(graph(ref, opts.format as GraphFormat));
    });
}
