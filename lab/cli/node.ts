import type { Command } from 'commander';
import { changeNode } from '../api/nodes.js';
import { ExitCode, LabError } from '../errors.js';
import { parseTaint, taintText } from '../plan/node-changes.js';
import { PROXY_HEALTH_PORT } from '../plan/kube-proxy/proxy-health.js';
import type { Taint } from '../topology/schema.js';
import { resolveLabName } from './lab-name.js';
import { printLoadBalancers } from './load-balancers.js';
import { bold, dim, green, printJson, red, say } from './output.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `lab node`: a running lab's Node marked as being deleted, or tainted; kube-proxy's /healthz follows. */
export function registerNode(program: Command): void {
  program
    .command('node')
    .description("change a running lab's Node as the API would: being deleted (a deletionTimestamp) or tainted; kube-proxy's /healthz on 10256 follows (503 while deleting or tainted ToBeDeletedByClusterAutoscaler)")
    .argument('<lab>', 'a lab that is up')
    .argument('<node>', 'one of its nodes, e.g. node2')
    .option('--deleting', 'the Node is being deleted (it gets a deletionTimestamp)')
    .option('--no-deleting', 'the Node is not being deleted (the lab lets you take the mark back; a real deletionTimestamp stays)')
    .option('--taint <key[=value]:Effect>', 'add a taint, as kubectl taint writes it (repeatable), e.g. ToBeDeletedByClusterAutoscaler:NoSchedule', collect)
    .option('--untaint <key[:Effect]>', 'remove the taints of that key (and effect) (repeatable)', collect)
    .option('--json', 'machine-readable output')
    .action(async (labArg: string, node: string, opts: { deleting?: boolean; taint?: string[]; untaint?: string[]; json?: boolean }) => {
      if (opts.deleting === undefined && !opts.taint && !opts.untaint) {
        throw new LabError('nothing to change: give --deleting, --no-deleting, --taint <key[=value]:Effect> or --untaint <key>', ExitCode.badInput);
      }
      const taint: Taint[] = (opts.taint ?? []).map(parseTaint);
      const r = await changeNode(resolveLabName(labArg), node, { ...(opts.deleting !== undefined ? { deleting: opts.deleting } : {}), taint, untaint: opts.untaint ?? [] });
      if (opts.json) return printJson(r);
      const status = (code: number) => (code === 200 ? green('200') : red('503'));
      say(`${bold('node')} ${r.node} of lab ${r.lab}: ${r.deleting ? red('being deleted') : 'not being deleted'}, taints ${r.taints.map(taintText).join(', ') || dim('none')} - ${r.ms} ms`);
      say(`${bold("kube-proxy's /healthz")} on ${r.node}:${PROXY_HEALTH_PORT}: ${status(r.was.healthz)} -> ${status(r.healthz)} ("nodeEligible": ${r.nodeEligible}); /livez stays 200; no rule changes`);
      printLoadBalancers(r.loadBalancers);
      say(dim(`next: lab exec ${r.lab} client -- curl -s http://${r.address}:${PROXY_HEALTH_PORT}/healthz`));
    });
}
