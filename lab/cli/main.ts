#!/usr/bin/env node
import { Command } from 'commander';
import { installSignalHandlers } from '../util/interrupt.js';
import { exitWithError } from './output.js';

const program = new Command()
  .name('lab')
  .description('kube-packet-lab: Kubernetes Service packet paths, built for real in Linux network namespaces')
  .version('0.1.0')
  .enablePositionalOptions()
  .exitOverride()
  .showHelpAfterError('(run lab --help for usage)');

/**
 * Each verb's module, loaded only when that verb runs: start-up is mostly module loading, so
 * `lab status` must not pay for dockerode, the workshop or the verify engine. Help, or a verb
 * nobody knows, loads them all (commander lists them, or says what is wrong).
 */
type Register = (program: Command) => void;
const inspect = () => import('./inspect.js').then((m) => m.registerInspect);
const pods = () => import('./pods.js').then((m) => m.registerPods);
const faults = () => import('./break.js').then((m) => m.registerBreak);
const verbs: Record<string, () => Promise<Register>> = {
  up: () => import('./up.js').then((m) => m.registerUp),
  down: () => import('./down.js').then((m) => m.registerDown),
  verify: () => import('./verify.js').then((m) => m.registerVerify),
  trace: () => import('./trace.js').then((m) => m.registerTrace),
  graph: () => import('./graph.js').then((m) => m.registerGraph),
  capture: () => import('./capture.js').then((m) => m.registerCapture),
  status: inspect,
  rules: inspect,
  conntrack: inspect,
  exec: inspect,
  scale: pods,
  kill: pods,
  revive: pods,
  probe: pods,
  endpoints: pods,
  node: () => import('./node.js').then((m) => m.registerNode),
  docker: () => import('./docker.js').then((m) => m.registerDocker),
  workshop: () => import('./workshop.js').then((m) => m.registerWorkshop),
  check: () => import('./check.js').then((m) => m.registerCheck),
  walkthrough: () => import('./walkthrough.js').then((m) => m.registerWalkthrough),
  apply: () => import('./apply.js').then((m) => m.registerApply),
  ui: () => import('./ui.js').then((m) => m.registerUi),
  class: () => import('./class.js').then((m) => m.registerClass),
  break: faults,
  repair: faults,
};
const verb = process.argv.slice(2).find((a) => !a.startsWith('-'));
const versionOnly = !verb && process.argv.slice(2).some((a) => a === '-V' || a === '--version');
const loaders = verb && verbs[verb] ? [verbs[verb]] : versionOnly ? [] : [...new Set(Object.values(verbs))];

// `up`'s workload process takes longer to start than the kernel work: it starts now, and waits
// to be placed in the lab (lab/kernel/workloads.ts). If `up` ends without placing it, it is stopped.
const help = process.argv.includes('--help') || process.argv.includes('-h');
const workloads = verb === 'up' && !help ? import('../api/prestart.js').then((m) => (m.prestartWorkloadHost(), m)) : undefined;
const discardUnplaced = () => workloads?.then((m) => m.discardUnplacedHost()).catch(() => undefined);

// SIGINT, SIGTERM, SIGHUP: stop children, run cleanups, exit 130/143/129 (lab/util/interrupt.ts).
installSignalHandlers();
// `lab rules nodeport node1 | head`: a reader that went away is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

Promise.all(loaders.map((load) => load()))
  .then((registers) => {
    for (const register of registers) register(program);
    return program.parseAsync(process.argv);
  })
  .then(discardUnplaced)
  .catch(async (err: unknown) => {
    await discardUnplaced();
    exitWithError(err);
  });
