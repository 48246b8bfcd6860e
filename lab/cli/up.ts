import type { Command } from 'commander';
import { up } from '../api/up.js';
import { HOST_IFNAME } from '../topology/names.js';
import { printAnnouncements, printLoadBalancers } from './load-balancers.js';
import { collectSet, collectUnset, dim, green, printJson, progress, progressDone, say } from './output.js';

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('build a lab from a scenario name (topologies/<name>.yaml) or a topology file')
    .argument('<topology>', 'scenario name or path to a .yaml file')
    .option('--name <lab>', 'lab name (namespace prefix); lets two copies of a scenario run side by side')
    .option('--set <key=value>', 'override a topology field, e.g. services.web.externalTrafficPolicy=Local', collectSet, {})
    .option('--unset <key>', 'remove a topology field (the same as --set key=)', collectUnset, {})
    .option('--json', 'machine-readable output')
    .action(async (topology: string, opts: { name?: string; set: Record<string, string>; unset: Record<string, string>; json?: boolean }) => {
      const overrides = { ...opts.set, ...opts.unset, ...(opts.name ? { lab: opts.name } : {}) };
      const t0 = performance.now();
      const result = await up(topology, { overrides, onStage: (stage, ms) => progress(`up: ${stage} done (${ms} ms)`) });
      progressDone();
      const ms = Math.round(performance.now() - t0);
      if (opts.json) {
        printJson({ lab: result.lab, namespaces: result.state.namespaces, processes: result.state.processes, timings: result.timings, loadBalancers: result.loadBalancers, ...(result.announced ? { announced: result.announced } : {}), ms });
        return;
      }
      say(`${green('up')} lab ${result.lab} in ${ms} ms`);
      for (const ns of result.plan.namespaces) {
        const addrs = ns.addresses.filter((a) => a.ifname === HOST_IFNAME || ns.role !== 'pod').map((a) => `${a.ifname} ${a.cidr}`);
        say(`  ${ns.ns.padEnd(22)} ${ns.role.padEnd(7)} ${addrs.join(', ')}`);
      }
      for (const p of result.state.processes) say(dim(`  workload ${p.pod} pid ${p.pid} listening on ${p.ports.join(',')}`));
      printLoadBalancers(result.loadBalancers);
      printAnnouncements(result.announced);
      // Verbs on a running lab take its name, whatever file or --name it came from.
      // Run by `lab docker up` from the host, which prints the hint that works there instead.
      if (!process.env.LAB_RELAYED_BY) say(dim(`next: lab verify ${result.lab}; lab down ${result.lab}`));
    });
}
