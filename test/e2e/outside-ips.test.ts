import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { failuresOf, lab, requireRoot, ROOT, sh, type VerifyJson } from './helpers.js';

/**
 * test/fixtures/worlds/outside-ips.yaml on the real kernel: a load balancer IP (1.2.3.4) and an
 * external IP (5.6.7.8) outside every lab network, routed by the lab over both nodes; a client
 * that sends from an extra address (inside loadBalancerSourceRanges) as well as from its own
 * (outside them, dropped); node1's extra address, where iptables mode's NodePorts answer too.
 * The derived walkthrough verifies in both modes.
 */
const root = requireRoot();
const FILE = join(ROOT, 'test', 'fixtures', 'worlds', 'outside-ips.yaml');

describe.skipIf(!root)('service IPs outside the lab, and senders with extra addresses', () => {
  const out = mkdtempSync(join(tmpdir(), 'lab-outside-ips-'));
  afterAll(async () => {
    await lab(['down', 'outside']);
    rmSync(out, { recursive: true, force: true });
  });

  for (const mode of ['iptables', 'nftables'] as const) {
    it(`${mode}: verifies by its derived walkthrough`, async () => {
      await lab(['down', 'outside']);
      const up = await lab(['up', FILE, '--set', `kubeProxy.mode=${mode}`], { timeout: 120_000 });
      expect(up.exitCode, up.stderr).toBe(0);
      const inNs = (host: string, ...args: string[]) => sh('ip', ['netns', 'exec', `outside-${host}`, 'ip', ...args]);
      expect(await inNs('client', '-4', '-o', 'addr', 'show', 'eth0')).toContain('10.241.0.40/24');
      expect(await inNs('node1', '-4', '-o', 'addr', 'show', 'eth0')).toContain('10.240.0.14/24');
      expect(await inNs('client', 'route', 'get', '1.2.3.4')).toContain('via 10.241.0.1');
      const lbRoute = await inNs('router', 'route', 'show', '1.2.3.4/32');
      expect(lbRoute).toContain('nexthop via 10.240.0.4');
      expect(lbRoute).toContain('nexthop via 10.240.0.5');

      const good = await lab(['verify', 'outside', '--json', '--out', join(out, mode)], { timeout: 400_000 });
      const result = JSON.parse(good.stdout) as VerifyJson;
      expect(failuresOf(result)).toEqual([]);
      expect(good.exitCode).toBe(0);
      const names = result.paths.map((p) => p.name);
      expect(names).toContain('default/lb:http loadBalancer from client (10.241.0.40) to 1.2.3.4:80');
      expect(names).toContain('default/lb:http loadBalancer from client to 1.2.3.4:80');
      expect(names).toContain('default/ext:http externalIP from client to 5.6.7.8:80');
      // nftables' NodePorts answer on the node IP only (--nodeport-addresses primary).
      expect(names.some((n) => n.includes('10.240.0.14:30080'))).toBe(mode === 'iptables');
      await lab(['down', 'outside']);
    }, 900_000);
  }
});
