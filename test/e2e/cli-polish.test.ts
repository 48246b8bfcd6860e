import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { visibleLength } from '../../lab/util/colour.js';
import { CLI, lab, requireRoot } from './helpers.js';

/**
 * What the CLI prints where a new user meets it: graph on a terminal, rules of an nftables lab
 * with iptables-only options, verify's table piped to a pager.
 */

const root = requireRoot();
const LAB = 'polish-nft';

/** Run the CLI with a terminal as its stdout (script(1) gives it a pty), in `cwd`. */
async function onTerminal(args: string[], cwd: string): Promise<string> {
  const r = await execa('script', ['-qec', [process.execPath, CLI, ...args].join(' '), '/dev/null'], { cwd, reject: false, env: { NO_COLOR: '1' } });
  expect(r.exitCode, String(r.stdout)).toBe(0);
  return String(r.stdout);
}

describe('lab graph', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lab-graph-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('on a terminal writes the SVG to a file and says where, instead of dumping it', async () => {
    const out = await onTerminal(['graph', 'nodeport'], dir);
    expect(out).not.toContain('<svg');
    const file = join(dir, 'lab-runs', 'nodeport', 'graph.svg');
    expect(out).toContain(`graph: wrote ${file}`);
    expect(readFileSync(file, 'utf8')).toMatch(/^<svg /);
  });

  it('redirected, or with -o, still gives the SVG', async () => {
    const piped = await lab(['graph', 'nodeport']);
    expect(piped.stdout).toMatch(/^<svg /);
    const file = join(dir, 'mine.svg');
    const r = await lab(['graph', 'nodeport', '-o', file]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(file, 'utf8').trimEnd()).toBe(piped.stdout.trimEnd());
  });

  it('text formats print on a terminal', async () => {
    expect(await onTerminal(['graph', 'nodeport', '--format', 'mermaid'], dir)).toMatch(/^(flowchart|graph) /m);
    expect(existsSync(join(dir, 'lab-runs', 'nodeport', 'graph.mmd'))).toBe(false);
  });
});

describe.skipIf(!root)('a running nftables lab', () => {
  beforeAll(async () => {
    await lab(['down', LAB]);
    const up = await lab(['up', 'nodeport', '--name', LAB, '--set', 'kubeProxy.mode=nftables']);
    expect(up.exitCode, up.stderr).toBe(0);
  });
  afterAll(async () => {
    await lab(['down', LAB]);
  });

  it('lab rules refuses -c and -t, saying what works instead', async () => {
    const counters = await lab(['rules', LAB, 'node1', '-c']);
    expect(counters.exitCode).toBe(2);
    expect(counters.stderr).toContain("-c: kube-proxy's nftables rules carry no counters");
    expect(counters.stderr).toContain(`lab trace ${LAB}`);
    expect(counters.stdout).toBe('');
    const table = await lab(['rules', LAB, 'node1', '-t', 'nat']);
    expect(table.exitCode).toBe(2);
    expect(table.stderr).toContain('-t nat: kube-proxy\'s nftables mode keeps its nat and filter chains in one table, ip kube-proxy');
    const plain = await lab(['rules', LAB, 'node1']);
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(plain.stdout).toContain('table ip kube-proxy');
  });

  it('verify piped fits COLUMNS, and 80 columns without it', async () => {
    for (const [env, width] of [[{ COLUMNS: '100' }, 100], [{ COLUMNS: '' }, 80]] as const) {
      const r = await lab(['verify', LAB], { env: { ...env } });
      expect(r.exitCode, r.stderr).toBe(0);
      // The file paths (captures:, report:) are never cut; every other line fits.
      const long = r.stdout.split('\n').filter((l) => !/^(captures|report): /.test(l) && visibleLength(l) > width);
      expect(long, `COLUMNS=${env.COLUMNS}`).toEqual([]);
    }
  });
});
