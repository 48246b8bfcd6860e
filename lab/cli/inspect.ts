import type { Command } from 'commander';
import { ExitCode, LabError } from '../errors.js';
import { preflight } from '../kernel/preflight.js';
import { resolveLabName } from './lab-name.js';
import { bold, dim, green, printJson, red, say, yellow } from './output.js';

export function registerInspect(program: Command): void {
  program
    .command('status')
    .description('labs on this machine: namespaces, addresses, workloads, BGP sessions')
    .argument('[lab]', 'one lab only')
    .option('--json', 'machine-readable output')
    .action(async (labArg: string | undefined, opts: { json?: boolean }) => {
      preflight(['ip']);
      const { status } = await import('../api/status.js');
      const labs = await status(labArg ? resolveLabName(labArg) : undefined);
      if (opts.json) return printJson(labs);
      if (labs.length === 0) return say(labArg ? `lab ${labArg} is not up` : 'no labs are up');
      for (const l of labs) {
        say(`${bold(l.lab)} ${l.phase === 'up' ? green('up') : red(l.phase)} since ${l.createdAt} ${dim(l.topology)}`);
        for (const n of l.namespaces) {
          say(`  ${n.ns.padEnd(24)} ${n.present ? n.addresses.map((a) => `${a.ifname} ${a.cidr}`).join(', ') : red('missing')}`);
        }
        for (const w of l.workloads) say(`  workload ${w.pod} pid ${w.pid} ports ${w.ports.join(',')} ${w.running ? green('running') : red('stopped')}${w.terminating ? ` ${yellow('terminating')} (lab endpoints ${l.lab})` : ''}`);
        for (const d of l.daemons) {
          say(`  ${d.name} in ${d.host} pid ${d.pid} ${d.running ? green('running') : red('stopped')}`);
          for (const s of d.sessions) say(`    BGP ${d.host} ↔ ${s.peer.padEnd(12)} ${s.info.startsWith('Established') ? green(s.info) : red(`${s.state} ${s.info}`.trim())}`);
        }
      }
    });

  program
    .command('rules')
    .description("a node's kube-proxy rules as kube-proxy wrote them (iptables-save, or nft list table in nftables mode)")
    .argument('<lab>')
    .argument('<node>')
    .option('-t, --table <table>', 'nat (the default), filter or mangle; iptables mode only')
    .option('-c, --counters', 'show packet and byte counters; iptables mode only')
    .action(async (labArg: string, node: string, opts: { table?: string; counters?: boolean }) => {
      preflight(['ip', 'iptables-save', 'nft']);
      if (opts.table !== undefined && !['nat', 'filter', 'mangle'].includes(opts.table)) throw new LabError(`--table ${opts.table}: expected nat, filter or mangle`, ExitCode.badInput);
      const { rules } = await import('../api/inspect.js');
      say((await rules(resolveLabName(labArg), node, opts.table, opts.counters)).text);
    });

  program
    .command('conntrack')
    .description("a node's connection-tracking table: each connection's original and reply tuple")
    .argument('<lab>')
    .argument('<node>')
    .option('--all', "also the lab's own connections (verify, probe, the workshop's checks: source ports 10000-32767)")
    .option('--json', 'machine-readable output (every connection)')
    .action(async (labArg: string, node: string, opts: { json?: boolean; all?: boolean }) => {
      preflight(['ip', 'conntrack']);
      const { conntrack, relayedSources } = await import('../api/inspect.js');
      const { isLabOwnConnection } = await import('../kernel/ports.js');
      const lab = resolveLabName(labArg);
      const all = await conntrack(lab, node);
      if (opts.json) return printJson(all);
      const relayed = relayedSources(lab);
      const entries = opts.all ? all : all.filter((e) => !isLabOwnConnection(e, relayed));
      const hidden = all.length - entries.length;
      const note = hidden > 0 ? dim(`(${hidden} of the lab's own connections not shown: verify, probe and the workshop's checks; --all shows them)`) : '';
      if (entries.length === 0) return say(`no tracked TCP connections${hidden > 0 ? ` of yours ${note}` : ''}`);
      if (note) say(note);
      for (const e of entries) {
        say(`${e.state.padEnd(12)} orig ${e.original.src}:${e.original.sport} > ${e.original.dst}:${e.original.dport}   reply ${e.reply.src}:${e.reply.sport} > ${e.reply.dst}:${e.reply.dport}`);
      }
    });

  program
    .command('exec')
    .description("run a command inside a host's namespace, e.g. lab exec nodeport node1 -- ip route")
    .argument('<lab>')
    .argument('<host>')
    .argument('<command...>')
    .passThroughOptions()
    .action(async (labArg: string, host: string, command: string[]) => {
      preflight(['ip']);
      const argv = command[0] === '--' ? command.slice(1) : command;
      if (argv.length === 0) throw new LabError('lab exec: no command given (e.g. lab exec nodeport node1 -- ip route)', ExitCode.badInput);
      // Only the first -- separates: a second one would reach ip netns exec as the program's name.
      if (argv[0]!.startsWith('-')) throw new LabError(`lab exec: "${argv[0]}" is not a command: only the first -- separates the lab's arguments from the command (e.g. lab exec nodeport node1 -- ip route)`, ExitCode.badInput);
      const { execIn } = await import('../api/inspect.js');
      process.exitCode = await execIn(resolveLabName(labArg), host, argv);
    });
}
