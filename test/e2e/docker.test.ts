import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDocker, LABEL_FILTER } from '../../lab/docker/index.js';
import { namespaceMarker } from '../../lab/kernel/netns.js';
import { processStartTime } from '../../lab/kernel/processes.js';
import { CLI, hostSnapshot, lab, namespaces, requireRoot } from './helpers.js';

/**
 * The Docker path, for real: build the lab image, start the lab container, `lab up` and
 * `lab verify` nodeport inside it, look inside, `lab docker down`. The host must come out
 * as it went in: no container, no image of the test, no namespace, no rule.
 *
 * Needs a Docker engine (scripts/docker-engine.sh starts one and builds an offline base).
 * Skipped only with LAB_SKIP_DOCKER=1; without an engine the test fails.
 * LAB_DOCKER_BASE picks the BASE build argument (CI: kube-packet-lab-base:bookworm).
 */
const skip = process.env.LAB_SKIP_DOCKER === '1';
const root = skip ? false : requireRoot();
const IMAGE = 'kube-packet-lab:test';
const BASE = process.env.LAB_DOCKER_BASE ?? 'node:20-bookworm-slim';
/** The lab inside the container gets its own name, so no lab on the host can share its namespaces' names. */
const LAB = 'dockertest';
const LAB_NAMESPACES = ['client', 'node1', 'node2', 'router', 'web-1', 'web-2'].map((h) => `${LAB}-${h}`);

/**
 * The host's namespaces, except those of other labs (their loopback marker names another lab):
 * other test runs may bring labs up and down on the host meanwhile, and that is not ours to judge.
 */
async function hostNamespacesNotOfOtherLabs(otherLabNamespaces: Set<string>): Promise<string[]> {
  const all = await namespaces();
  const marks = await Promise.all(all.map(async (ns) => [ns, await namespaceMarker(ns)] as const));
  for (const [ns, mark] of marks) if (mark && mark !== `kube-packet-lab:${LAB}`) otherLabNamespaces.add(ns);
  return all.filter((ns) => !otherLabNamespaces.has(ns));
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
async function timed<T>(what: string, work: () => Promise<T>, times: Record<string, string>): Promise<T> {
  const t0 = performance.now();
  const result = await work();
  times[what] = seconds(performance.now() - t0);
  return result;
}

/** Containers carrying the lab's label, straight from the engine. */
async function labContainers(): Promise<{ id: string; image: string }[]> {
  const docker = await connectDocker();
  const list = await docker.listContainers({ all: true, filters: { label: [LABEL_FILTER] } });
  return list.map((c) => ({ id: c.Id, image: c.Labels['kube-packet-lab.image'] ?? c.Image }));
}

/** Remove what this test made, whatever state a failure left: its container, then its image. */
async function cleanUp(): Promise<void> {
  const docker = await connectDocker();
  for (const c of await labContainers()) {
    if (c.image === IMAGE) await docker.getContainer(c.id).remove({ force: true, v: true }).catch(() => undefined);
  }
  await docker.getImage(IMAGE).remove({ force: true }).catch(() => undefined);
}

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
    // A lab container made by someone else is theirs: refuse rather than remove it.
    const others = (await labContainers()).filter((c) => c.image !== IMAGE);
    if (others.length > 0) throw new Error(`a lab container (${LABEL_FILTER}) is already running from ${others[0]!.image}: run lab docker down first`);
    await cleanUp(); // leftovers of an earlier, interrupted run of this test
    hostBefore = await hostSnapshot();
    namespacesBefore = await hostNamespacesNotOfOtherLabs(otherLabs);
  });

  afterAll(async () => {
    await lab(['docker', 'down'], { timeout: 60_000 }).catch(() => undefined);
    await cleanUp();
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
    const built = /image kube-packet-lab:test built in ([\d.]+ s)/.exec(up.stdout);
    expect(built).not.toBeNull();
    times['image build'] = built![1]!;
    const started = /started in ([\d.]+ s); lab up took ([\d.]+ s)/.exec(up.stdout);
    expect(started).not.toBeNull();
    times['container start'] = started![1]!;
    times['lab up inside'] = started![2]!;

    const containers = await labContainers();
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
  });

  it('comes down from any directory and leaves the host as it was', async () => {
    const [c] = await labContainers();
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
    expect(String(down.stdout)).toMatch(/container kube-packet-lab \(\w+\) removed/);
    expect(await labContainers()).toEqual([]);
    expect((await lab(['docker', 'down'])).stdout).toMatch(/no lab container/);

    // Every process of the container (workloads, any tcpdump) is gone with it.
    expect(containerProcesses.filter((p) => p.start !== undefined && processStartTime(p.pid) === p.start)).toEqual([]);
    expect(await hostNamespacesNotOfOtherLabs(otherLabs)).toEqual(namespacesBefore);
    expect(await hostSnapshot()).toEqual(hostBefore);
  });
});
