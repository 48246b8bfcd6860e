import type { Command } from 'commander';
import { graph, writeGraph, type GraphFormat } from '../api/graph.js';
import { dim, say } from './output.js';

export function registerGraph(program: Command): void {
  program
    .command('graph')
    .description('the topology picture: namespaces, bridges, veth links, addresses, Services (SVG to a file on a terminal, to stdout when redirected)')
    .argument('<scenario|lab>', 'a running lab, a scenario name or a topology file')
    .option('--format <svg|mermaid|dot>', 'picture format', 'svg')
    .option('-o, --out <file>', 'write the picture to this file')
    .action((ref: string, opts: { format: string; out?: string }) => {
      const format = opts.format as GraphFormat;
      // Raw SVG is no use on a terminal: it goes to a file, and the terminal is told where.
      if (opts.out !== undefined || (format === 'svg' && process.stdout.isTTY)) {
        const { path, bytes } = writeGraph(ref, format, opts.out);
        say(`graph: wrote ${path} (${format}, ${bytes} bytes)${format === 'svg' ? '; open it in a browser' : ''}`);
        if (opts.out === undefined) say(dim('a redirect (lab graph … > file.svg) or -o <file> writes it elsewhere; --format mermaid or dot prints text'));
        return;
      }
      process.stdout.write(graph(ref, format));
    });
}
