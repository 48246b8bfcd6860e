import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDocker, execCapture, execStream, hostConfig } from '../../lab/docker/index.js';
import { ROOT, hostSnapshot, namespaces, requireRoot } from './helpers.js';

/**
 * The Vagrant user's first hour, on a fresh Debian bookworm: the plain debootstrap minbase image
 * that scripts/docker-engine.sh builds (nothing of the project, no Node, no lab tools, empty apt
 * lists) gets a copy of the repository as the Vagrantfile's rsync makes it, and runs
 * `scripts/provision.sh --demo`, the Vagrantfile's provisioning plus the demo: install.sh installs
 * the Debian packages and the npm dependencies, builds, brings nodeport up and verifies it.
 *
 * The container has no network (NetworkMode none, as the lab's docker path), so the two
 * registries come from the host, and install.sh runs unchanged:
 * - Debian: scripts/debian-mirror.sh makes a partial bookworm mirror on the host holding exactly
 *   the packages install.sh asks for and what they pull into this image, served with Debian's own
 *   signed InRelease; the container's sources.list names that folder instead of the network, and
 *   apt checks the signatures as usual.
 * - npm: a copy of the host's npm cache (filled by the host's own `npm ci` of the same lock
 *   file), with npm's offline mode: `npm ci` takes every package from it or fails naming it.
 *
 * Skipped with LAB_SKIP_DOCKER=1, as the docker test; without an engine or the image it fails.
 */
const skip = process.env.LAB_SKIP_DOCKER === '1';
const root = skip ? false : requireRoot();
const IMAGE = process.env.LAB_CLEAN_IMAGE ?? 'kube-packet-lab-debian:bookworm';
const CONTAINER = 'kube-packet-lab-provision-test';
const TEST_LABEL = 'kube-packet-lab.provision-test';
/** Where the Vagrantfile puts the project. */
const PROJECT_DIR = '/home/vagrant/kube-packet-lab';
const MIRROR_CACHE = '/var/cache/kube-packet-lab/debian-mirror';
const MIRROR_IN_CONTAINER = '/srv/debian-mirror';
const NPM_CACHE_IN_CONTAINER = '/srv/npm-cache';

/** The Debian packages install.sh may install: its `need+=(...)` lines, so the two never drift. */
async function installShPackages(): Promise<string[]> {
  const script = await readFile(join(ROOT, 'scripts', 'install.sh'), 'utf8');
  return [...script.matchAll(/need\+=\(([\w.+-]+)\)/g)].map((m) => m[1]!);
}

/** The repository as the Vagrantfile's rsync copies it: the working tree's files, no .git, nothing ignored. */
async function repositoryTar(): Promise<Buffer> {
  const files = await execa('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT });
  const tar = await execa('tar', ['--null', '--ignore-failed-read', '-T', '-', '-c'], {
    cwd: ROOT,
    input: files.stdout,
    encoding: 'buffer',
  });
  return Buffer.from(tar.stdout);
}

/** Collects a command's output and notes when each `==> step` line of install.sh appears. */
class StepLog extends Writable {
  text = '';
  readonly marks: { line: string; at: number }[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    const s = chunk.toString('utf8');
    this.text += s;
    for (const line of s.split('\n')) if (line.startsWith('==> ')) this.marks.push({ line: line.slice(4), at: performance.now() });
    done();
  }
}

async function removeLeftovers(docker: Docker): Promise<void> {
  const old = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=1`] } });
  for (const c of old) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
}

describe.skipIf(skip || !root)('provisioning a fresh Debian bookworm (what vagrant up runs)', () => {
  let docker: Docker;
  let container: Docker.Container;
  let npmCache: string;
  let hostBefore: Record<string, string>;
  let namespacesBefore: string[];
  const times: Record<string, string> = {};
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

  beforeAll(async () => {
    docker = await connectDocker();
    if (!(await docker.getImage(IMAGE).inspect().catch(() => undefined))) {
      throw new Error(`no image ${IMAGE}: scripts/docker-engine.sh builds it`);
    }
    await removeLeftovers(docker);
    hostBefore = await hostSnapshot();
    namespacesBefore = await namespaces();

    // A copy: npm writes to its cache even when it only reads packages from it. Then the host's
    // own `npm ci` of the same lock file, into that copy, adds whatever the host's cache lacks
    // (package metadata as `npm ci` asks for it included), so the copy holds the whole lock.
    const hostCache = (await execa('npm', ['config', 'get', 'cache'])).stdout.trim();
    npmCache = await mkdtemp(join(tmpdir(), 'kube-packet-lab-npm-cache-'));
    await execa('cp', ['-a', join(hostCache, '_cacache'), npmCache]);
    const lockOnly = await mkdtemp(join(tmpdir(), 'kube-packet-lab-npm-lock-'));
    try {
      for (const f of ['package.json', 'package-lock.json']) await copyFile(join(ROOT, f), join(lockOnly, f));
      await execa('npm', ['ci', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', '--cache', npmCache], { cwd: lockOnly });
    } finally {
      await rm(lockOnly, { recursive: true, force: true });
    }
    await mkdir(join(MIRROR_CACHE, 'debian'), { recursive: true });

    container = await docker.createContainer({
      name: CONTAINER,
      Image: IMAGE,
      Cmd: ['sleep', 'infinity'],
      Labels: { [TEST_LABEL]: '1' },
      HostConfig: {
        ...hostConfig(false), // NetworkMode none, and what `lab up` needs inside
        Binds: [`${join(MIRROR_CACHE, 'debian')}:${MIRROR_IN_CONTAINER}:ro`, `${npmCache}:${NPM_CACHE_IN_CONTAINER}`],
      },
    });
    await container.start();
  }, 180_000);

  afterAll(async () => {
    // Removing the container ends everything in it: the lab's workloads, namespaces and rules.
    if (docker) await removeLeftovers(docker);
    if (npmCache) await rm(npmCache, { recursive: true, force: true });
    console.log(`provision timings: ${JSON.stringify(times)}`);
  }, 120_000);

  it('the Vagrantfile provisions with the script this test runs', async () => {
    const vagrantfile = await readFile(join(ROOT, 'Vagrantfile'), 'utf8');
    expect(vagrantfile).toMatch(/^\s*bash scripts\/provision\.sh\s*$/m);
  });

  it('starts from a machine that has none of what install.sh installs', async () => {
    const packages = await installShPackages();
    expect(packages).toEqual(expect.arrayContaining(['iproute2', 'iptables', 'tcpdump', 'conntrack', 'curl', 'bird2', 'nodejs', 'npm']));
    const probe = await execCapture(container, ['bash', '-c', 'for c in ip iptables-restore tcpdump conntrack curl bird node npm; do command -v $c; done; ls /var/lib/apt/lists; test -e /home/vagrant || echo no-home']);
    expect(probe.stdout.trim().split('\n')).toEqual(['no-home']);
    const net = await execCapture(container, ['cat', '/proc/net/dev']);
    expect(net.stdout.split('\n').filter((l) => /^\s*\w+:/.test(l)).map((l) => l.trim().split(':')[0])).toEqual(['lo']);
  });

  it('runs scripts/provision.sh --demo from a fresh copy: install, lab up nodeport, lab verify passes', async () => {
    // The Debian mirror, judged against this image's own installed packages.
    const status = await execCapture(container, ['cat', '/var/lib/dpkg/status']);
    const statusFile = join(npmCache, 'dpkg-status');
    await execa('tee', [statusFile], { input: status.stdout, stdout: 'ignore' });
    let t0 = performance.now();
    await execa('bash', [join(ROOT, 'scripts', 'debian-mirror.sh'), statusFile, MIRROR_CACHE, ...(await installShPackages())]);
    times['debian mirror (host)'] = seconds(performance.now() - t0);
    await rm(statusFile);

    // The machine's apt source: the mirror folder, the same suite and component as debootstrap's.
    // dpkg skips its fsync calls in this throwaway container (as Docker's own Debian images once
    // did): 415 packages on overlayfs take minutes longer otherwise, and nothing here outlives it.
    const sources = await execCapture(container, [
      'bash',
      '-c',
      `echo 'deb file:${MIRROR_IN_CONTAINER} bookworm main' > /etc/apt/sources.list && echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/unsafe-io`,
    ]);
    expect(sources.code).toBe(0);
    expect((await execCapture(container, ['mkdir', '-p', PROJECT_DIR])).code).toBe(0);
    await container.putArchive(await repositoryTar(), { path: PROJECT_DIR });

    const log = new StepLog();
    t0 = performance.now();
    const code = await execStream(container, ['bash', 'scripts/provision.sh', '--demo'], {
      workdir: PROJECT_DIR,
      env: [`npm_config_cache=${NPM_CACHE_IN_CONTAINER}`, 'npm_config_offline=true'],
      stdout: log,
      stderr: log,
    });
    const end = performance.now();
    times['provision.sh --demo'] = seconds(end - t0);
    log.marks.forEach((m, i) => (times[m.line.split(' ').slice(0, 2).join(' ')] = seconds((log.marks[i + 1]?.at ?? end) - m.at)));
    expect(code, log.text.slice(-4000)).toBe(0);

    // The lab's tools and Node were missing here, so install.sh installed them (from the mirror).
    const installed = /^==> apt-get install (.+)$/m.exec(log.text)?.[1]?.split(' ') ?? [];
    expect(installed).toEqual(expect.arrayContaining(['iproute2', 'iptables', 'tcpdump', 'conntrack', 'curl', 'bird2', 'nodejs', 'npm']));
    expect(log.text).toContain('==> npm ci');
    expect(log.text).toMatch(/up.* lab nodeport in \d+ ms/);
    expect(log.text).toMatch(/verify nodeport: \d+ passed, 0 failed/);
    // install.sh put `lab` on PATH: the bare name runs from any directory.
    const onPath = await execCapture(container, ['sh', '-c', 'cd / && command -v lab && lab --version']);
    expect(onPath.stdout.trim().split('\n')).toEqual(['/usr/local/bin/lab', expect.stringMatching(/^\d+\.\d+\.\d+$/)]);
    const node = await execCapture(container, ['bash', '-c', 'dpkg-query -W -f "\\${Version}" nodejs; echo; node --version']);
    times['node in the VM'] = node.stdout.trim().replace('\n', ' = ');
  }, 900_000);

  it('leaves the host as it was', async () => {
    expect(await namespaces()).toEqual(namespacesBefore);
    expect(await hostSnapshot()).toEqual(hostBefore);
  });
});
