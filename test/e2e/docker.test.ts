import { execa } from 'execa';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, connectDocker, inspectImage } from '../../lab/docker/index.js';
import { processStartTime } from '../../lab/kernel/processes.js';
import { seededRandom } from '../../scripts/fuzz-pods.js';
import {
  CONTAINER,
  IMAGE,
  LAB,
  cleanUp,
  hostNamespacesNotOfOtherLabs,
  removeTestContainers,
  stopDockerUp,
  testContainers,
  type Moment,
} from './docker-helpers.js';
import { CLI, hostSnapshot, lab, namespaces, requireRoot } from './helpers.js';

/**
 * The Docker path, for real: build the lab image, start the lab container, `lab up` and
 * `lab verify` nodeport inside it, look inside, `lab docker down`. The host must come out
 * as it went in: no container, no image of the test, no namespace, no rule. Then `lab docker up`
 * stopped by signals at seeded moments, and an inner `lab up` that fails: each leaves nothing.
 *
 * Needs a Docker engine (scripts/docker-engine.sh starts one and builds an offline base).
 * Skipped only with LAB_SKIP_DOCKER=1; without an engine the test fails.
 * LAB_DOCKER_BASE picks the BASE build argument (CI: kube-packet-lab-base:bookworm).
 * The container is the test's own (LAB_DOCKER_CONTAINER), so a lab container of the user's
 * is left alone. LAB_DOCKER_SIGNAL_SEED replays the signal moments of an earlier run.
 */
const skip = process.env.LAB_SKIP_DOCKER === '1';
const root = skip ? false : requireRoot();
const BASE = process.env.LAB_DOCKER_BASE ?? 'node:20-bookworm-slim';
process.env.LAB_DOCKER_CONTAINER = CONTAINER; // every `lab docker` this file runs uses the test's container
const LAB_NAMESPACES = ['client', 'node1', 'node2', 'router', 'web-1', 'web-2'].map((h) => `${LAB}-${h}`);
const SEED = Number(process.env.LAB_DOCKER_SIGNAL_SEED ?? Math.floor(Math.random() * 2 ** 31));
const replay = `seed ${SEED}: replay with LAB_DOCKER_SIGNAL_SEED=${SEED}`;
const random = seededRandom(SEED);
/** A delay in [lo, hi) ms, drawn from the seed. */
const delay = (lo: number, hi: number) => Math.round(lo + random() * (hi - lo));
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
async function timed<T>(what: string, work: () => Promise<T>, times: Record<string, string>): Promise<T> {
  const t0 = performance.now();
  const result = await work();
  times[what] = seconds(performance.now() - t0);
  return result;
}

/** The labs and namespaces up in the test's container, from lab docker status. */
async function insideContainer(): Promise<{ labs: string[]; namespaces: string[] } | undefined> {
  const status = await lab(['docker', 'status', '--json']);
  expect(status.exitCode, status.stderr).toBe(0);
  return (JSON.parse(status.stdout) as { container?: { labs: string[]; namespaces: string[] } }).container;
}

afterAll(async () => {
  if (!skip && root) await cleanUp();
}, 120_000);

describe.skipIf(skip || !root)('lab docker: up, verify, shell, down in one container', () => {
  const times: Record<string, string> = {};
  let hostBefore: Record<string, string>;
  const otherLabs = new Set<string>();
  let namespacesBefore: string[];
  /** Every process in the container just before `docker down`: host pid and start time. */
  let containerProcesses: { pid: number; start: string | undefined }[] = [];

  beforeAll(async () => {
    // An engine must answer: without one this fails (set LAB_SKIP_DOCKER=1 to skip instead).
    const status = await lab(['docker', 'status', '--json']);
    if (status.exitCode !== 0) throw new Error(`no usable Docker engine (set LAB_SKIP_DOCKER=1 to skip): ${status.stderr.trim()}`);
    await cleanUp(); // leftovers of an earlier, interrupted run of this test
    hostBefore = await hostSnapshot();
    namespacesBefore = await hostNamespacesNotOfOtherLabs(otherLabs);
  });

  afterAll(async () => {
    await lab(['docker', 'down'], { timeout: 60_000 }).catch(() => undefined);
    await removeTestContainers();
    console.log(`docker timings (base ${BASE}): ${JSON.stringify(times)}`);
  }, 120_000);

  it('builds the image and brings nodeport up inside one labelled container', async () => {
    const up = await timed(
      'docker up (build + start + lab up)',
      () => lab(['docker', 'up', 'nodeport', '--image', IMAGE, '--base', BASE, '--rebuild', '--', '--name', LAB], { timeout: 280_000 }),
      times,
    );
    expect(up.stderr, up.stderr).not.toMatch(/lab: /);
    expect(up.exitCode).toBe(0);
    expect(up.stdout).toMatch(/up.* lab dockertest in \d+ ms/);
    // Only the host's hint, which works on the host: not the inner `lab up`'s.
    expect(up.stdout.split('\n').filter((l) => l.includes('next:'))).toEqual([expect.stringMatching(/^next: lab docker verify dockertest;/)]);
    const built = /image kube-packet-lab:test built in ([\d.]+ s)/.exec(up.stdout);
    expect(built).not.toBeNull();
    times['image build'] = built![1]!;
    const started = /started in ([\d.]+ s); lab up took ([\d.]+ s)/.exec(up.stdout);
    expect(started).not.toBeNull();
    times['container start'] = started![1]!;
    times['lab up inside'] = started![2]!;

    const containers = await testContainers();
    expect(containers).toHaveLength(1);
    const info = await (await connectDocker()).getContainer(containers[0]!.id).inspect();
    expect(info.State.Running).toBe(true);
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.HostConfig.CapAdd).toEqual(expect.arrayContaining(['NET_ADMIN', 'SYS_ADMIN']));

    const status = await lab(['docker', 'status', '--json']);
    expect(status.exitCode).toBe(0);
    const s = JSON.parse(status.stdout) as { container: { labs: string[]; namespaces: string[]; image: string } };
    expect(s.container.image).toBe(IMAGE);
    expect(s.container.labs).toEqual([LAB]);
    expect(s.container.namespaces).toEqual(expect.arrayContaining(LAB_NAMESPACES));
  }, 300_000);

  it('shows the lab namespaces inside the container, and none on the host', async () => {
    const list = await lab(['docker', 'shell', '-c', 'ip netns list']);
    expect(list.exitCode).toBe(0);
    for (const ns of LAB_NAMESPACES) expect(list.stdout).toContain(ns);
    // They exist in the container's mount namespace only: the host's list does not gain them.
    expect(await hostNamespacesNotOfOtherLabs(otherLabs)).toEqual(namespacesBefore);
    expect((await namespaces()).filter((ns) => ns.startsWith(`${LAB}-`))).toEqual([]);

    // Into a node's namespace by its short name: node1 owns the NodePort address.
    const node1 = await lab(['docker', 'shell', 'node1', '-c', 'ip netns identify; ip -br addr show eth0']);
    expect(node1.exitCode).toBe(0);
    expect(node1.stdout).toContain(`${LAB}-node1`);
    expect(node1.stdout).toContain('10.240.0.4/24');

    // The container itself has no way out: loopback only.
    const links = await lab(['docker', 'shell', '-c', 'ip -o link show | grep -v " lo:" | grep -c "" || true']);
    expect(links.stdout.trim()).toBe('0');
  });

  it('hands on the exit code and stdin of commands run inside', async () => {
    expect((await lab(['docker', 'shell', 'web-1', '-c', 'exit 7'])).exitCode).toBe(7);
    const piped = await execa(process.execPath, [CLI, 'docker', 'shell', 'web-2'], {
      input: 'ip netns identify\nexit 4\n',
      reject: false,
      timeout: 60_000,
    });
    expect(piped.stdout).toContain(`${LAB}-web-2`);
    expect(piped.exitCode).toBe(4);
    const unknown = await lab(['docker', 'shell', 'node9', '-c', 'true']);
    expect(unknown.exitCode).toBe(5);
    expect(unknown.stderr).toMatch(/no namespace for "node9"/);
  });

  it('verifies nodeport inside the container', async () => {
    const verify = await timed('docker verify', () => lab(['docker', 'verify', LAB], { timeout: 120_000 }), times);
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/verify dockertest: \d+ passed, 0 failed/);
    // The run folder comes out to the host.
    const copied = /run folder copied to the host: (\S+) \(report\.html, pcaps\)/.exec(verify.stdout)?.[1];
    expect(copied, verify.stdout).toBeDefined();
    try {
      expect(readFileSync(join(copied!, 'report.html'), 'utf8')).toContain('<svg');
      expect(readdirSync(copied!).filter((f) => f.endsWith('.pcap')).length).toBeGreaterThan(3);
    } finally {
      rmSync(join(copied!, '..'), { recursive: true, force: true }); // lab-runs/dockertest: this test's runs only
    }
  });

  it('takes a second lab back out of the running container when its up is stopped, and keeps the container', async () => {
    // The inner nodeport up takes about 0.7 s: a signal within its first 0.3 s finds it building.
    const moment: Moment = { after: 'docker: lab up', delayMs: delay(0, 300), signal: random() < 0.5 ? 'SIGINT' : 'SIGTERM' };
    const r = await stopDockerUp(['nodeport', '--image', IMAGE, '--', '--name', `${LAB}2`], moment);
    const about = `${replay}; ${JSON.stringify(moment)}; exit ${r.exitCode ?? r.signal}\n${r.stderr}`;
    expect(r.sent, about).toBe(true);
    expect(r.exitCode, about).toBe(SIGNAL_EXIT[moment.signal]);
    const inside = await insideContainer();
    expect(inside?.labs, about).toEqual([LAB]);
    expect(inside?.namespaces.filter((ns) => ns.startsWith(`${LAB}2-`)), about).toEqual([]);
    expect(inside?.namespaces, about).toEqual(expect.arrayContaining(LAB_NAMESPACES));
  }, 120_000);

  it('says what failed when an inner lab up fails in the running container, and keeps it', async () => {
    const up = await lab(['docker', 'up', 'nodeport', '--image', IMAGE, '--', '--name', `${LAB}3`, '--set', 'services.nope.port=1'], { timeout: 120_000 });
    expect(up.exitCode, up.stderr).toBe(2);
    expect(up.stderr).toMatch(new RegExp(`"lab up nodeport --name ${LAB}3 --set services.nope.port=1" failed inside the lab container \\(exit 2\\); its stderr:\\n  lab: .*nope`));
    expect(up.stderr).toContain(`the container ${CONTAINER} was already running and stays`);
    expect((await insideContainer())?.labs).toEqual([LAB]);
  }, 120_000);

  it('runs a second Docker lab beside the first with --name, and lab docker down --name removes only that one', async () => {
    const up = await lab(['docker', 'up', 'nodeport', '--image', IMAGE, '--name', 'two'], { timeout: 120_000 });
    expect(up.exitCode, up.stderr).toBe(0);
    expect(up.stdout).toContain('next: lab docker verify nodeport --name two;');
    expect((await testContainers()).map((c) => c.name).sort()).toEqual([CONTAINER, `${CONTAINER}-two`]);
    const two = JSON.parse((await lab(['docker', 'status', '--json', '--name', 'two'])).stdout) as { container?: { name: string; labs: string[] } };
    expect(two.container?.name).toBe(`${CONTAINER}-two`);
    expect(two.container?.labs).toEqual(['nodeport']);
    expect((await insideContainer())?.labs).toEqual([LAB]); // the default one is untouched
    const down = await lab(['docker', 'down', '--name', 'two'], { timeout: 60_000 });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(down.stdout).toMatch(new RegExp(`container ${CONTAINER}-two \\(\\w+\\) removed`));
    expect((await testContainers()).map((c) => c.name)).toEqual([CONTAINER]);
    expect((await insideContainer())?.labs).toEqual([LAB]);
  }, 150_000);

  it('comes down from any directory and leaves the host as it was', async () => {
    const [c] = await testContainers();
    const top = (await (await connectDocker()).getContainer(c!.id).top({ ps_args: '-eo pid,args' })) as { Titles: string[]; Processes: string[][] };
    containerProcesses = top.Processes.map((p) => Number(p[top.Titles.indexOf('PID')])).map((pid) => ({ pid, start: processStartTime(pid) }));
    expect(containerProcesses.length).toBeGreaterThanOrEqual(3); // init, sleep and the lab's one workload process at least
    const down = await timed(
      'docker down',
      () => execa(process.execPath, [CLI, 'docker', 'down'], { cwd: '/', reject: false, timeout: 60_000 }),
      times,
    );
    expect(down.exitCode, String(down.stderr)).toBe(0);
    expect(String(down.stdout)).toMatch(/down.* lab dockertest: 6 namespaces, 1 process\b/);
    expect(String(down.stdout)).toMatch(new RegExp(`container ${CONTAINER} \\(\\w+\\) removed`));
    expect(await testContainers()).toEqual([]);
    expect((await lab(['docker', 'down'])).stdout).toMatch(/no lab container/);

    // Every process of the container (workloads, any tcpdump) is gone with it.
    expect(containerProcesses.filter((p) => p.start !== undefined && processStartTime(p.pid) === p.start)).toEqual([]);
    expect(await hostNamespacesNotOfOtherLabs(otherLabs)).toEqual(namespacesBefore);
    expect(await hostSnapshot()).toEqual(hostBefore);
  });
});

describe.skipIf(skip || !root)('lab docker up stopped or failing: nothing of its own is left', () => {
  const otherLabs = new Set<string>();
  let namespacesBefore: string[];

  beforeAll(async () => {
    const docker = await connectDocker();
    if (!(await inspectImage(docker, IMAGE))) await buildImage(docker, { tag: IMAGE, base: BASE });
    await removeTestContainers();
    namespacesBefore = await hostNamespacesNotOfOtherLabs(otherLabs);
  }, 300_000);

  afterAll(async () => {
    await removeTestContainers();
  });

  /** After a round: no container of the test's, no namespace of its lab on the host. */
  async function expectNothingLeft(about: string): Promise<void> {
    expect(await testContainers(), about).toEqual([]);
    expect(await hostNamespacesNotOfOtherLabs(otherLabs), about).toEqual(namespacesBefore);
  }

  it('rolls back when stopped by SIGINT or SIGTERM at seeded moments, and exits 130 or 143', async () => {
    // A whole docker up takes about 1.5 s here (0.5 s to a running container, 0.7 s of inner up).
    const moments: Omit<Moment, 'signal'>[] = [
      { after: 'start', delayMs: delay(0, 300) }, // connecting, looking for the container
      { after: 'docker: starting container', delayMs: delay(0, 400) }, // create and start in flight
      { after: 'docker: lab up', delayMs: delay(0, 150) }, // the inner lab up starting
      { after: 'docker: lab up', delayMs: delay(150, 400) }, // the inner lab up building namespaces
    ];
    const rounds = moments.flatMap((m) => (['SIGINT', 'SIGTERM'] as const).map((signal) => ({ ...m, signal })));
    const log: string[] = [];
    let interrupted = 0;
    for (const moment of rounds) {
      const t0 = performance.now();
      const r = await stopDockerUp(['nodeport', '--image', IMAGE, '--', '--name', LAB], moment);
      const line = `${JSON.stringify(moment)}: exit ${r.exitCode ?? r.signal} in ${seconds(performance.now() - t0)}`;
      log.push(line);
      const about = `${replay}\n${log.join('\n')}\n${r.stderr}`;
      if (r.exitCode === 0) {
        // It finished before the signal came (or as it exited): an ordinary lab, removed as usual.
        expect((await lab(['docker', 'down'], { timeout: 120_000 })).exitCode, about).toBe(0);
      } else if (r.signal === moment.signal && moment.after === 'start') {
        // Node had not yet installed the CLI's handlers: killed by the signal before it made anything.
        interrupted++;
      } else {
        expect(r.sent, about).toBe(true);
        expect(r.exitCode, about).toBe(SIGNAL_EXIT[moment.signal]);
        interrupted++;
      }
      await expectNothingLeft(about);
    }
    // Most rounds must really have been cut short, or the test proves nothing.
    expect(interrupted, `${replay}\n${log.join('\n')}`).toBeGreaterThanOrEqual(rounds.length - 2);
    console.log(`docker up signal rounds (${replay}):\n${log.join('\n')}`);
  }, 600_000);

  it('leaves to lab docker down what a SIGKILL cut short', async () => {
    const moments: Moment[] = [
      { after: 'docker: starting container', delayMs: delay(0, 400), signal: 'SIGKILL' },
      { after: 'docker: lab up', delayMs: delay(0, 300), signal: 'SIGKILL' },
    ];
    for (const moment of moments) {
      const r = await stopDockerUp(['nodeport', '--image', IMAGE, '--', '--name', LAB], moment);
      const about = `${replay}; ${JSON.stringify(moment)}; exit ${r.exitCode ?? r.signal}`;
      expect(r.signal, about).toBe('SIGKILL');
      const down = await lab(['docker', 'down'], { timeout: 120_000 });
      expect(down.exitCode, `${about}\n${down.stderr}`).toBe(0);
      await expectNothingLeft(about);
    }
  }, 300_000);

  it('removes the container an inner lab up failed in, and says what failed inside', async () => {
    const up = await lab(['docker', 'up', 'nodeport', '--image', IMAGE, '--', '--name', LAB, '--set', 'services.nope.port=1'], { timeout: 120_000 });
    expect(up.exitCode, up.stderr).toBe(2);
    expect(up.stderr).toMatch(new RegExp(`"lab up nodeport --name ${LAB} --set services.nope.port=1" failed inside the lab container \\(exit 2\\); its stderr:\\n  lab: .*nope`));
    expect(up.stderr).toContain(`the container ${CONTAINER}, made for it, is removed`);
    await expectNothingLeft(up.stderr);
  }, 120_000);
});
