#!/usr/bin/env node
import { Command } from 'commander';
import { registerDocker } from './docker.js';
import { registerDown } from './down.js';
import { registerInspect } from './inspect.js';
import { installSignalHandlers } from '../util/interrupt.js';
import { exitWithError } from './output.js';
import { registerPods } from './pods.js';
import { registerTrace } from './trace.js';
import { registerUp } from './up.js';
import { registerVerify } from './verify.js';
import { registerWorkshop } from './workshop.js';

const program = new Command()
  .name('lab')
  .description('kube-packet-lab: Kubernetes Service packet paths, built for real in Linux network namespaces')
  .version('0.1.0')
  .enablePositionalOptions()
  .exitOverride()
  .showHelpAfterError('(run lab --help for usage)');

registerUp(program);
registerDown(program);
registerVerify(program);
registerTrace(program);
registerInspect(program);
registerPods(program);
registerDocker(program);
registerWorkshop(program);

// SIGINT, SIGTERM, SIGHUP: stop children, run cleanups, exit 130/143/129 (lab/util/interrupt.ts).
installSignalHandlers();
// `lab rules nodeport node1 | head`: a reader that went away is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

program.parseAsync(process.argv).catch(exitWithError);
