import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { failuresOf, lab, requireRoot, ROOT, sh, type VerifyJson } from './helpers.js';

/**
 * A Service whose targetPort is a name (test/fixtures/worlds/named-ports.yaml): web-1 declares
 * "http" on 8080, web-2 on 9090, web-3 not at all. On the real kernel each pod listens on its own
 * number, kube-proxy DNATs to it, and the derived walkthrough (web-3 answering none of port 80)
 * verifies in both modes.
 */
const root = requireRoot();
const FILE = join(ROOT, 'test', 'fixtures', 'worlds', 'named-ports.yaml');

describe.skipIf(!root)('named target ports', () => {
  const out = mkdtempSync(join(tmpdir(), 'lab-named-ports-'));
  afterAll(async () => {
    await lab(['down', 'named']);
    rmSync(out, { recursive: true, force: true });
  });

  for (const mode of ['iptables', 'nftables'] as const) {
    it(`${mode}: each pod is reached on its own number, the pod without the name never on port 80`, async () => {
      await lab(['down', 'named']);
      const up = await lab(['up', FILE, '--set', `kubeProxy.mode=${mode}`], { timeout: 120_000 });
      expect(up.exitCode, up.stderr).toBe(0);
      const listening = async (pod: string) => (await sh('ip', ['netns', 'exec', `named-${pod}`, 'ss', '-Htln'])).split('\n').map((l) => l.trim().split(/\s+/)[3]).filter(Boolean).sort();
      expect(await listening('web-1')).toEqual(['0.0.0.0:8080', '0.0.0.0:9100']);
      expect(await listening('web-2')).toEqual(['0.0.0.0:9090', '0.0.0.0:9100']);
      expect(await listening('web-3')).toEqual(['0.0.0.0:9100']);

      const good = await lab(['verify', 'named', '--json', '--out', join(out, mode)], { timeout: 400_000 });
      const result = JSON.parse(good.stdout) as VerifyJson;
      expect(failuresOf(result)).toEqual([]);
      expect(good.exitCode).toBe(0);
      expect(result.passed).toBeGreaterThan(50);
      const http = result.paths.filter((p) => p.name.startsWith('default/web:http '));
      expect(http.length).toBeGreaterThan(0);
      expect(http.some((p) => p.name.endsWith('-> web-3'))).toBe(false);
      expect(http.some((p) => p.name.endsWith('-> web-2'))).toBe(true);
      await lab(['down', 'named']);
    }, 900_000);
  }
});
