import type { Command } from 'commander';
import { conntrackStates } from '../api/kill-explanation.js';
import { kill, revive, scale, type EndpointChangeResult } from '../api/pods.js';
import { probe } from '../api/probe.js';
import { ExitCode, LabError } from '../errors.js';
import { conditionsText, endpointRows } from './endpoint-rows.js';
import { resolveLabName } from './lab-name.js';
import { printAnnouncements, printLoadBalancers } from './load-balancers.js';
import { bold, dim, green, printJson, progress, progressDone, red, say, yellow } from './output.js';

/** "web=3" → ["web", 3] */
function parseReplicas(arg: string): [string, number] {
  const m = /^([a-z][a-z0-9-]*)=(\d+)$/.exec(arg);
  if (!m) throw new LabError(`"${arg}": expected <group>=<replicas>, e.g. web=3 (pods web-1, web-2, web-3)`, ExitCode.badInput);
  return [m[1]!, Number(m[2])];
}

/** Endpoints before/after and each node's resync: what every endpoint change prints. */
function printChange(r: EndpointChangeResult): void {
  for (const after of r.endpointsAfter) {
    const before = r.endpointsBefore.find((b) => b.service === after.service);
    const change = r.changes.find((c) => c.service === after.service);
    if (!change || (change.added.length === 0 && change.removed.length === 0)) continue;
    const show = (eps: { pod: string; address: string }[], mark: (a: string) => string) =>
      eps.length ? eps.map((e) => mark(`${e.address} (${e.pod})`)).join(', ') : dim('none');
    say(`${bold('endpoints')} of ${after.service}`);
    say(`  before: ${show(before?.endpoints ?? [], (a) => (change.removed.some((x) => a.startsWith(`${x} `)) ? red(a) : a))}`);
    say(`  after:  ${show(after.endpoints, (a) => (change.added.some((x) => a.startsWith(`${x} `)) ? green(a) : a))}`);
    for (const e of after.terminating) say(`  ${yellow('terminating')}: ${e.address} (${e.pod}) ${conditionsText(e.conditions)}`);
  }
  const call = r.rules[0]?.mode === 'nftables' ? 'one nft -f transaction' : 'one iptables-restore --noflush';
  const first = r.rules[0];
  const kind = !first ? '' : first.sync === 'full' ? 'a full sync' : `a partial sync (the ${first.services} changed service${first.services === 1 ? '' : 's'} rewritten)`;
  say(`${bold('kube-proxy rules')}: ${kind}, ${call} per node, all nodes at once`);
  for (const n of r.rules) {
    const ip6 = (c: string) => `${c} (ip6)`;
    const chains = [
      ...n.added.map((c) => green(`+${c}`)),
      ...n.removed.map((c) => red(`-${c}`)),
      ...(n.added6 ?? []).map((c) => green(`+${ip6(c)}`)),
      ...(n.removed6 ?? []).map((c) => red(`-${ip6(c)}`)),
    ];
    say(`  ${n.node.padEnd(8)} ${chains.join(' ') || dim('no chain added or removed (rules rewritten in place)')} ${dim(`(${n.lines} lines, ${n.restoreMs} ms)`)}`);
  }
  printLoadBalancers(r.loadBalancers);
  printAnnouncements(r.announced);
}

const timings = (t: Record<string, number>) => Object.entries(t).map(([k, v]) => `${k} ${v} ms`).join(', ');

/** The verbs that change or look at a running lab's pods and endpoints. */
export function registerPods(program: Command): void {
  registerScale(program);
  registerKill(program);
  registerRevive(program);
  registerEndpoints(program);
  registerProbe(program);
}

/** `lab scale`: pods of a group added or removed, rules resynced. */
function registerScale(program: Command): void {
  program
    .command('scale')
    .description('add or remove backend pods of a running lab (pods <group>-<n>), then resync every node\'s kube-proxy rules')
    .argument('<lab>', 'a lab that is up')
    .argument('<group=replicas>', 'e.g. web=3: pods web-1..web-3; new pods spread over the nodes')
    .option('--json', 'machine-readable output')
    .action(async (labArg: string, spec: string, opts: { json?: boolean }) => {
      const [group, replicas] = parseReplicas(spec);
      const r = await scale(resolveLabName(labArg), group, replicas, { onStage: (s, ms) => progress(`scale: ${s} done (${ms} ms)`) });
      progressDone();
      if (opts.json) return printJson(r);
      say(`${green('scaled')} ${group} in lab ${r.lab}: ${r.from} -> ${r.to} pods in ${r.ms} ms`);
      for (const p of r.added) say(`  ${green('+')} ${p.name.padEnd(8)} ${p.node.padEnd(6)} ${p.address.padEnd(12)} ${dim(`namespace ${p.namespace}${p.pid ? `, workload pid ${p.pid}` : ''}`)}`);
      for (const p of r.removed) say(`  ${red('-')} ${p.name.padEnd(8)} ${p.node.padEnd(6)} ${p.address}`);
      if (r.from === r.to) say(dim('  nothing to add or remove; rules resynced anyway'));
      printChange(r);
      say(dim(`timings: ${timings(r.timings)}`));
      say(dim(`next: lab probe ${r.lab} (who answers new connections)${r.rules[0] ? `; lab rules ${r.lab} ${r.rules[0].node}` : ''}`));
    });
}

/** `lab kill`: a pod fails, as readiness or deletion would make it. */
function registerKill(program: Command): void {
  program
    .command('kill')
    .description('a pod fails: stop its workload and remove it from the endpoints as a failed readiness probe would; rules resynced')
    .argument('<lab>', 'a lab that is up')
    .argument('<pod>', 'a pod that backs a Service, e.g. web-2')
    .option('--keep-running', 'fail only the readiness probe: the workload keeps serving connections it already has')
    .option('--terminating', 'the pod is deleted and serves out its grace period: it keeps answering, and becomes a serving-terminating endpoint (used only where no ready one is left)')
    .option('--json', 'machine-readable output')
    .action(async (labArg: string, pod: string, opts: { keepRunning?: boolean; terminating?: boolean; json?: boolean }) => {
      const r = await kill(resolveLabName(labArg), pod, { keepRunning: opts.keepRunning ?? false, terminating: opts.terminating ?? false });
      if (opts.json) return printJson(r);
      const how = r.terminating
        ? 'terminating, workload still serving'
        : r.stopped
          ? `workload stopped${r.pids.length ? ` (pid ${r.pids.join(', ')})` : ''}`
          : 'workload left running (readiness failed)';
      say(`${red('killed')} ${r.pod.name} (${r.pod.address} on ${r.pod.node}) in lab ${r.lab}: ${how}, no longer a ready endpoint - ${r.ms} ms`);
      printChange(r);
      say(`${bold('conntrack entries')} translated to ${r.pod.name}: ${r.existing.length === 0 ? 'none' : `${r.existing.length} (${conntrackStates(r.existing.map((e) => e.state))})`}`);
      for (const e of r.existing.slice(0, 10)) say(`  ${e.node.padEnd(6)} ${e.state.padEnd(12)} orig ${e.original}   reply ${e.reply}`);
      if (r.existing.length > 10) say(dim(`  … ${r.existing.length - 10} more (lab conntrack ${r.lab} ${r.existing[10]!.node})`));
      for (const line of r.explanation) say(yellow('  * ') + line);
      say(dim(`timings: ${timings(r.timings)}`));
      say(dim(`next: lab probe ${r.lab} (${r.terminating ? 'who answers new connections now' : `new connections avoid ${r.pod.name}`}); lab endpoints ${r.lab}; lab revive ${r.lab} ${r.pod.name}`));
    });
}

/** `lab revive`: a killed pod becomes an endpoint again. */
function registerRevive(program: Command): void {
  program
    .command('revive')
    .description('a killed pod recovers: start its workload again if needed and make it an endpoint again; rules resynced')
    .argument('<lab>', 'a lab that is up')
    .argument('<pod>', 'a pod that backs a Service')
    .option('--json', 'machine-readable output')
    .action(async (labArg: string, pod: string, opts: { json?: boolean }) => {
      const r = await revive(resolveLabName(labArg), pod);
      if (opts.json) return printJson(r);
      say(`${green('revived')} ${r.pod.name} in lab ${r.lab}${r.started ? `: workload started (pid ${r.pid})` : ''}, an endpoint again - ${r.ms} ms`);
      printChange(r);
      say(dim(`timings: ${timings(r.timings)}`));
    });
}

/** `lab endpoints`: the EndpointSlices' view of a running lab. */
function registerEndpoints(program: Command): void {
  program
    .command('endpoints')
    .description("a running lab's endpoints as its EndpointSlices list them, the not-ready ones marked: ready, serving, terminating")
    .argument('<lab>', 'a lab that is up')
    .option('--json', 'machine-readable output')
    .action(async (labArg: string, opts: { json?: boolean }) => {
      const { endpoints } = await import('../api/endpoints.js');
      const r = endpoints(resolveLabName(labArg));
      if (opts.json) return printJson(r);
      for (const s of r.services) {
        say(bold(s.service));
        for (const line of endpointRows(s)) say(line);
      }
    });
}

/** `lab probe`: fresh connections, counted by the pod that answers. */
function registerProbe(program: Command): void {
  program
    .command('probe')
    .description('send fresh connections and count which pods answer (default: the walkthrough\'s traffic)')
    .argument('<lab>', 'a lab that is up')
    .option('--from <host>', 'client or pod to send from')
    .option('--to <ip:port>', 'where to send, e.g. 10.240.0.4:32000')
    .option('-n, --requests <n>', 'how many connections', (v) => Number(v), 20)
    .option('--timeout <seconds>', 'how long each request waits for an answer', (v) => Number(v), 1)
    .option('--json', 'machine-readable output')
    .action(async (labArg: string, opts: { from?: string; to?: string; requests: number; timeout: number; json?: boolean }) => {
      if (!(opts.timeout >= 0.1 && opts.timeout <= 10)) throw new LabError(`--timeout ${opts.timeout}: expected 0.1-10 seconds`, ExitCode.badInput);
      const r = await probe(resolveLabName(labArg), { from: opts.from, to: opts.to, requests: opts.requests, timeout: opts.timeout });
      // Not one answer: the path is broken, and a script must be able to tell.
      if (r.failed === r.requests) process.exitCode = ExitCode.checkFailed;
      if (opts.json) return printJson(r);
      say(`${bold('probe')} ${r.from} -> ${r.to}: ${r.requests} new connections in ${r.ms} ms`);
      const pods = [...new Set([...r.endpoints, ...Object.keys(r.answeredBy)])].sort();
      for (const p of pods) {
        const n = r.answeredBy[p] ?? 0;
        const note = r.endpoints.includes(p) ? '' : red(' (not an endpoint!)');
        say(`  ${p.padEnd(12)} ${String(n).padStart(4)}  ${'#'.repeat(Math.round((n / r.requests) * 40))}${note}`);
      }
      if (r.failed > 0) say(`  ${yellow('no answer'.padEnd(12))} ${String(r.failed).padStart(4)}  ${dim(r.errors[0] ?? '')}`);
    });
}
