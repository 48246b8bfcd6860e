import { execa, type ResultPromise } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab, namespaces, requireRoot, ROOT } from './helpers.js';

/**
 * `lab` on PATH, as install.sh leaves it: scripts/install-command.sh writes the launcher (here
 * into a folder of the test's own instead of /usr/local/bin), and everything below runs by the
 * bare name, through a shell, from a directory that is not the repository, with a PATH that has
 * no node_modules/.bin. The hints the lab prints (up's "next:" line, the workshop list, every
 * "Look:" command of the nodeport workshop) are then run exactly as printed.
 */

const root = requireRoot();
const LAB = 'onpath';

describe.skipIf(!root)('lab on PATH: the bare name, and every printed hint as printed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lab-on-path-'));
  const bin = join(dir, 'bin');
  const elsewhere = join(dir, 'elsewhere');
  const env = { PATH: `${bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, NO_COLOR: '1', LAB_WORKSHOP_DIR: join(dir, 'progress') };
  /** A command line as a user types it into a shell. */
  const shell = (line: string, input?: string) =>
    execa('sh', ['-c', line], { cwd: elsewhere, env, extendEnv: false, reject: false, timeout: 120_000, input, stdin: input === undefined ? 'ignore' : undefined });
  const ran = async (line: string, input?: string) => {
    const r = await shell(line, input);
    return { code: r.exitCode ?? -1, out: String(r.stdout), err: String(r.stderr) };
  };

  beforeAll(async () => {
    mkdirSync(elsewhere, { recursive: true });
    await lab(['down', LAB]);
    const inst = await execa('bash', [join(ROOT, 'scripts', 'install-command.sh')], { env: { LAB_BIN_DIR: bin }, reject: false });
    expect(inst.exitCode, String(inst.stderr)).toBe(0);
  });
  afterAll(async () => {
    await lab(['down', LAB]);
    rmSync(dir, { recursive: true, force: true });
    expect((await namespaces()).filter((n) => n.startsWith(`${LAB}-`))).toEqual([]);
  });

  it('lab --version and lab --help run by the bare name from another directory', async () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const v = await ran('lab --version');
    expect(v.code, v.err).toBe(0);
    expect(v.out.trim()).toBe(version);
    const h = await ran('lab --help');
    expect(h.code, h.err).toBe(0);
    expect(h.out).toMatch(/Usage: lab/);
  });

  it("up's next: hints and the workshop's list and Look: commands run as printed", async () => {
    const up = await ran(`lab up nodeport --name ${LAB}`);
    expect(up.code, up.err).toBe(0);
    const next = up.out.split('\n').find((l) => l.startsWith('next: '));
    expect(next, up.out).toBeDefined();
    const hints = next!.slice('next: '.length).split(';').map((h) => h.replace(/\([^)]*\)/g, '').trim());
    for (const h of hints.filter((h) => !h.startsWith('lab down'))) {
      const r = await ran(h);
      expect([0, 1], `${h}: exit ${r.code}\n${r.err}`).toContain(r.code);
    }

    // `lab workshop` lists the labs that are up with the command that starts each.
    const list = await ran('lab workshop');
    expect(list.code, list.err).toBe(0);
    const start = list.out.split('\n').map((l) => /(lab workshop \S+)\s*$/.exec(l)?.[1]).find((c) => c === `lab workshop ${LAB}`);
    expect(start, list.out).toBeDefined();

    // Skip through every step: each Look: line the workshop prints, run as printed.
    const session = await ran(start!, 'skip\n'.repeat(20));
    expect(session.code, session.err).toBe(0);
    expect(session.out).toContain('Workshop complete.');
    const looks = [...session.out.matchAll(/^ {4}\$ (lab .+?)(?: {3}# (.*))?$/gm)].map((m) => ({ cmd: m[1]!, note: m[2] ?? '' }));
    expect(looks.length).toBeGreaterThan(10);
    for (const l of looks) {
      if (/\btcpdump\b/.test(l.cmd)) await expectCaptureStarts(l.cmd);
      else {
        const r = await ran(l.cmd);
        expect(r.code, `${l.cmd}: exit ${r.code}\n${r.err}`).toBe(0);
        expect(r.out.trim(), l.cmd).not.toBe('');
      }
    }
    const down = hints.find((h) => h.startsWith('lab down'));
    expect(down).toBe(`lab down ${LAB}`);
    expect((await ran(down!)).code).toBe(0);
  }, 400_000);

  /** A capture look (`lab exec … tcpdump`) runs until it has its packets: it must start listening; then it is interrupted. */
  async function expectCaptureStarts(cmd: string): Promise<void> {
    const child: ResultPromise = execa('sh', ['-c', cmd], { cwd: elsewhere, env, extendEnv: false, reject: false, detached: true, stdin: 'ignore' });
    let seen = '';
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 15_000);
      child.stderr?.on('data', (d: Buffer) => {
        seen += d.toString();
        if (seen.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void child.finally(() => resolve());
    });
    // Its own process group: the shell, lab exec and the tcpdump it started.
    if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGINT');
    await child;
    expect(seen, cmd).toContain('listening on');
  }
});
