import type { Command } from 'commander';
import { containerNameFor, DEFAULT_IMAGE, nameFlag } from '../docker/engine.js';
import { dockerDown, dockerShell, dockerStatus } from '../docker/runner.js';
import { dockerUp } from '../docker/up.js';
import { loadTopology } from '../topology/load.js';
import { bold, dim, green, printJson, progress, progressDone, say, yellow } from './output.js';

/**
 * One progress line, cut to the terminal's width so it can be redrawn in place. Without a
 * terminal (CI logs), the milestones are written as plain lines instead: the phases, the
 * build's steps and its warnings, so a slow build shows where it is.
 */
function showProgress(text: string): void {
  if (!process.stderr.isTTY) {
    if (/^docker: |^docker build: (Step \d+\/\d+ :|WARNING|installing: |node v)/.test(text)) {
      process.stderr.write(`${text.length > 160 ? `${text.slice(0, 159)}…` : text}\n`);
    }
    return;
  }
  const width = (process.stderr.columns ?? 100) - 1;
  const line = text.replace(/\s+/g, ' ').trim();
  progress(line.length > width ? `${line.slice(0, width - 1)}…` : line);
}

/**
 * The "next:" line after lab docker up, runnable as printed: verify and shell take the lab's
 * name (--name among the arguments for lab up, else the topology's `lab:`) and one of its nodes.
 */
export function dockerNextHint(scenario: string, labArgs: string[], container?: string): string {
  let topology: { lab: string; nodes: { name: string }[] } | undefined;
  try {
    topology = loadTopology(scenario).topology;
  } catch {
    topology = undefined; // a file only the container has: name what is known
  }
  const i = labArgs.findIndex((a) => a === '--name' || a.startsWith('--name='));
  const named = i < 0 ? undefined : labArgs[i]!.startsWith('--name=') ? labArgs[i]!.slice('--name='.length) : labArgs[i + 1];
  const lab = named ?? topology?.lab ?? scenario;
  const node = topology?.nodes[0]?.name;
  const n = nameFlag(container);
  const shell = node ? `lab docker shell ${node} --lab ${lab}${n}` : `lab docker shell${n}`;
  return `next: lab docker verify ${lab}${n}; ${shell}; lab docker down${n}`;
}

const NAME_HELP = 'the Docker lab of that name: its own container, kube-packet-lab-<name> (default: kube-packet-lab)';

/** A --name checked before anything is asked of the engine (exit 2 for a bad one). */
function checkedName(name: string | undefined): string | undefined {
  if (name !== undefined) containerNameFor(name);
  return name;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * The inner command already printed its own message; hand its code on unchanged.
 * exitCode (not exit()) lets stdout drain first.
 */
function passExitCode(code: number): void {
  if (code !== 0) process.exitCode = code;
}

export function registerDocker(program: Command): void {
  const docker = program
    .command('docker')
    .description('run the lab inside one Docker container (needs a Docker engine; no root beyond access to its socket)');

  registerDockerUp(docker);

  docker
    .command('verify')
    .description('run "lab verify <scenario>" in the lab container; exits with its code (0 pass, 1 fail)')
    .argument('<scenario>', 'scenario name or topology file, as for lab docker up')
    .argument('[labArgs...]', 'after --: more arguments for lab verify')
    .option('--name <name>', NAME_HELP)
    .action(async (scenario: string, labArgs: string[], opts: { name?: string }) => {
      const { dockerVerifyCopied } = await import('../docker/verify-copy.js');
      const r = await dockerVerifyCopied(scenario, labArgs, undefined, checkedName(opts.name));
      if (r.hostDir) say(`run folder copied to the host: ${r.hostDir} (report.html, pcaps)`);
      passExitCode(r.code);
    });

  docker
    .command('shell')
    .description('a shell in the lab container, or inside one of its namespaces (ip netns exec <lab>-<node> bash)')
    .argument('[node]', 'node, pod or client name (e.g. node1), or a full namespace name (nodeport-node1)')
    .option('--lab <name>', 'which lab, when more than one is up')
    .option('-c, --command <command>', 'run this command with bash -c instead of an interactive shell')
    .option('--name <name>', NAME_HELP)
    .action(async (node: string | undefined, opts: { lab?: string; command?: string; name?: string }) => {
      const name = checkedName(opts.name);
      passExitCode(
        await dockerShell(node, {
          ...(opts.lab ? { lab: opts.lab } : {}),
          ...(opts.command !== undefined ? { command: opts.command } : {}),
          ...(name !== undefined ? { name } : {}),
        }),
      );
    });

  docker
    .command('down')
    .description('run "lab down" in the lab container, then remove the container (found by its label, from any directory)')
    .option('--rmi', 'remove the container\'s image too')
    .option('--name <name>', `${NAME_HELP}; only that one is removed`)
    .action(async (opts: { rmi?: boolean; name?: string }) => {
      const name = checkedName(opts.name);
      const result = await dockerDown({ removeImage: opts.rmi ?? false, ...(name !== undefined ? { name } : {}) });
      if (result.absent) {
        say(`no lab container ${containerNameFor(name)} (label kube-packet-lab=1): nothing to remove`);
        return;
      }
      const c = result.container!;
      if (result.labDownCode !== undefined && result.labDownCode !== 0) {
        process.stderr.write(`lab: "lab down" in the container exited ${result.labDownCode}; the container is removed anyway\n`);
      }
      say(`${green('down')} container ${c.name} (${c.id.slice(0, 12)}) removed${result.removedImage ? `, image ${result.removedImage} removed` : ''}`);
    });

  docker
    .command('status')
    .description('the Docker engine, the lab image and container, and the labs up inside it')
    .option('--image <tag>', `image tag to report on (default: the container's, else ${DEFAULT_IMAGE})`)
    .option('--json', 'machine-readable output')
    .option('--name <name>', NAME_HELP)
    .action(async (opts: { image?: string; json?: boolean; name?: string }) => {
      const name = checkedName(opts.name);
      const s = await dockerStatus({ ...(opts.image ? { image: opts.image } : {}), ...(name !== undefined ? { name } : {}) });
      if (opts.json) return printJson(s);
      say(`${bold('engine')}    Docker ${s.engine.version} (API ${s.engine.apiVersion}) on ${s.engine.endpoint}`);
      say(
        `${bold('image')}     ${s.image.tag}: ${
          s.image.info ? `${s.image.info.id.slice(7, 19)}, built ${s.image.info.created}, ${Math.round(s.image.info.sizeBytes / 1e6)} MB` : yellow('not built')
        }`,
      );
      const others = s.containers.filter((n) => n !== containerNameFor(name));
      if (others.length) say(`${bold('others')}    ${others.join(', ')}`);
      if (!s.container) {
        say(`${bold('container')} ${yellow('none')} (lab docker up <scenario>${nameFlag(name)} starts ${containerNameFor(name)})`);
        return;
      }
      const c = s.container;
      say(`${bold('container')} ${c.name} ${c.id.slice(0, 12)}: ${c.state === 'running' ? green(c.status) : yellow(c.status)}${c.privileged ? ', privileged' : ''}`);
      say(`${bold('labs')}      ${c.labs.length ? c.labs.join(', ') : 'none'}`);
      if (c.namespaces.length) say(dim(`  namespaces: ${c.namespaces.join(' ')}`));
    });
}

/** lab docker up: build the image when needed, start the container, lab up inside it. */
function registerDockerUp(docker: Command): void {
  docker
    .command('up')
    .description('build the lab image if missing, start the lab container, run "lab up <scenario>" in it')
    .argument('<scenario>', 'scenario name (topologies/<name>.yaml) or a topology file in this project')
    .argument('[labArgs...]', 'after --: more arguments for lab up, e.g. -- --name np2')
    .option('--rebuild', 'build the image even if it exists')
    .option('--no-cache', 'with --rebuild: ignore cached layers')
    .option('--image <tag>', 'image tag to build and run', DEFAULT_IMAGE)
    .option('--base <image>', 'BASE build argument: a Debian bookworm image (default $LAB_DOCKER_BASE, else node:20-bookworm-slim)')
    .option('--build-network <mode>', 'network for the build\'s RUN steps (apt, npm)', 'host')
    .option('--privileged', 'run the container privileged instead of with NET_ADMIN + SYS_ADMIN and unconfined profiles')
    .option('--name <name>', `${NAME_HELP} (several per engine); lab up's own --name goes after --`)
    .action(
      async (
        scenario: string,
        labArgs: string[],
        opts: { rebuild?: boolean; cache: boolean; image: string; base?: string; buildNetwork: string; privileged?: boolean; name?: string },
      ) => {
        const name = checkedName(opts.name);
        const result = await dockerUp(scenario, {
          ...(name !== undefined ? { name } : {}),
          image: opts.image,
          ...(opts.base ? { base: opts.base } : {}),
          rebuild: opts.rebuild ?? false,
          noCache: !opts.cache,
          buildNetwork: opts.buildNetwork,
          privileged: opts.privileged ?? false,
          labArgs,
          onProgress: (text) => {
            showProgress(text);
            if (text.startsWith('docker: lab up')) progressDone();
          },
        });
        progressDone();
        const c = result.container;
        if (result.built) say(dim(`image ${result.image} built in ${seconds(result.buildMs ?? 0)}`));
        say(
          dim(
            `container ${c.name} (${c.id.slice(0, 12)}) ${result.created ? `started in ${seconds(result.startMs)}` : 'reused'}` +
              `${c.privileged ? ', privileged' : ''}; lab up took ${seconds(result.upMs)}`,
          ),
        );
        say(dim(dockerNextHint(scenario, labArgs, name)));
      },
    );
}
