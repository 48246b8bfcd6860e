import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lab, requireRoot, ROOT, type CliResult } from './helpers.js';

/**
 * Every "next:" hint the CLI prints must run as printed: run up, scale and kill the way a user
 * does, then each command their hints name, and check none of them fails on usage (unknown
 * option, a lab or node that does not exist). `lab down`, the last hint of up, runs last.
 */

const root = requireRoot();

/** The commands of the "next:" line of an output, without the "lab" and the parenthesised notes. */
function hints(out: CliResult): string[][] {
  const line = out.stdout.split('\n').find((l) => l.startsWith('next: '));
  expect(line, `no next: line in\n${out.stdout}`).toBeDefined();
  return line!
    .slice('next: '.length)
    .split(';')
    .map((h) => h.replace(/\([^)]*\)/g, '').trim().split(/\s+/))
    .map((words) => {
      expect(words[0]).toBe('lab');
      return words.slice(1);
    });
}

/** Run a verb, then every hint it printed but `down`; the down hints are returned for the end. */
async function runWithHints(args: string[]): Promise<string[][]> {
  const out = await lab(args, { timeout: 120_000 });
  expect(out.exitCode, `lab ${args.join(' ')}: ${out.stderr}`).toBe(0);
  const downs: string[][] = [];
  for (const hint of hints(out)) {
    if (hint[0] === 'down') {
      downs.push(hint);
      continue;
    }
    const r = await lab(hint, { timeout: 120_000 });
    const shown = `lab ${hint.join(' ')} (printed by lab ${args.join(' ')}) exit ${r.exitCode}: ${r.stderr}`;
    // 0, or 1 for a check that did not pass (verify, probe): never bad input, lab state or a crash.
    expect([0, 1], shown).toContain(r.exitCode);
    expect(r.stderr, shown).not.toMatch(/unknown option|missing required|too many arguments|is not up|no (node|pod|host)/i);
  }
  return downs;
}

async function runDowns(downs: string[][]): Promise<void> {
  for (const d of downs) {
    const r = await lab(d);
    expect(r.exitCode, `lab ${d.join(' ')}: ${r.stderr}`).toBe(0);
  }
}

describe.skipIf(!root)('next: hints run as printed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lab-hints-'));
  afterAll(async () => {
    await lab(['down', 'nn']);
    await lab(['down', 'nh']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('after up --name, scale and kill of a scenario', async () => {
    await lab(['down', 'nn']);
    const downs = await runWithHints(['up', 'nodeport', '--name', 'nn']);
    await runWithHints(['scale', 'nn', 'web=3']);
    await runWithHints(['kill', 'nn', 'web-2']);
    await runDowns(downs);
  }, 300_000);

  it('after up of a file whose nodes are not named node1, and scale', async () => {
    await lab(['down', 'nh']);
    // nodeport with its nodes renamed alpha and bravo, in a folder of its own.
    for (const f of ['nodeport.yaml', 'nodeport.walkthrough.yaml']) {
      const text = readFileSync(join(ROOT, 'topologies', f), 'utf8').replaceAll('node1', 'alpha').replaceAll('node2', 'bravo');
      writeFileSync(join(dir, f === 'nodeport.yaml' ? 'mine.yaml' : f), f === 'nodeport.yaml' ? text.replace(/^lab: nodeport$/m, 'lab: nh') : text);
    }
    const downs = await runWithHints(['up', join(dir, 'mine.yaml')]);
    await runWithHints(['scale', 'nh', 'web=3']);
    await runDowns(downs);
  }, 300_000);
});
