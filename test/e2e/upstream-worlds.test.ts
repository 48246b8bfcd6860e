import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { failuresOf, lab, requireRoot, ROOT, sh, type VerifyJson } from './helpers.js';

/**
 * Upstream's TestNodePorts world as a topology file (test/fixtures/upstream-worlds/node-ports.yaml:
 * an EndpointSlice without a node name, a NodePort below the usual range, --nodeport-addresses,
 * a bridge address of its own) comes up on the real kernel and verifies by its derived
 * walkthrough; once one of kube-proxy's rules is deleted inside a node, the same verify fails.
 */
const root = requireRoot();
const FILE = join(ROOT, 'test', 'fixtures', 'upstream-worlds', 'node-ports.yaml');

describe.skipIf(!root)('an upstream test world', () => {
  const out = mkdtempSync(join(tmpdir(), 'lab-upstream-world-'));
  afterAll(async () => {
    await lab(['down', 'upnp']);
    rmSync(out, { recursive: true, force: true });
  });

  for (const mode of ['iptables', 'nftables'] as const) {
    it(`TestNodePorts (${mode}): verifies by its derived walkthrough, and fails once a rule is removed`, async () => {
      await lab(['down', 'upnp']);
      const up = await lab(['up', FILE, '--set', `kubeProxy.mode=${mode}`], { timeout: 120_000 });
      expect(up.exitCode, up.stderr).toBe(0);
      const ns = 'upnp-other-node';
      // The bridge has the address the file gives it; the NodePort jump names the node address only.
      expect(await sh('ip', ['netns', 'exec', 'upnp-test-node', 'ip', '-4', '-o', 'addr', 'show', 'cbr0'])).toContain('10.180.0.254/24');

      const good = await lab(['verify', 'upnp', '--json', '--out', join(out, `${mode}-good`)], { timeout: 240_000 });
      const result = JSON.parse(good.stdout) as VerifyJson;
      expect(failuresOf(result)).toEqual([]);
      expect(good.exitCode).toBe(0);
      expect(result.paths.length).toBe(4);

      // Remove other-node's DNAT to the slice's endpoint: what other-node translates can no longer reach it.
      if (mode === 'iptables') {
        const save = await sh('ip', ['netns', 'exec', ns, 'iptables-save', '-t', 'nat']);
        expect(save).toContain('-A KUBE-SERVICES -d 192.168.0.3/32 -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -j KUBE-NODEPORTS');
        const rule = save.split('\n').find((l) => l.startsWith('-A KUBE-SEP-') && l.includes('--to-destination 10.180.0.1:80'));
        expect(rule).toBeDefined();
        await sh('ip', ['netns', 'exec', ns, 'iptables', '-t', 'nat', '-D', rule!.split(' ')[1]!, '2']);
      } else {
        const listed = await sh('ip', ['netns', 'exec', ns, 'nft', '-a', 'list', 'chain', 'ip', 'kube-proxy', 'endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80']);
        const handle = /dnat to 10\.180\.0\.1:80 # handle (\d+)/.exec(listed)?.[1];
        expect(handle).toBeDefined();
        await sh('ip', ['netns', 'exec', ns, 'nft', 'delete', 'rule', 'ip', 'kube-proxy', 'endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80', 'handle', handle!]);
      }
      const bad = await lab(['verify', 'upnp', '--json', '--out', join(out, `${mode}-bad`)], { timeout: 240_000 });
      expect(bad.exitCode).toBe(1);
      const failed = (JSON.parse(bad.stdout) as VerifyJson).paths.filter((p) => p.steps.some((s) => s.status === 'fail')).map((p) => p.name);
      // Exactly the two ways other-node translates: the ClusterIP from its pod, its NodePort.
      expect(failed.sort()).toEqual(['ns1/svc1:p80 clusterIP from sender to 172.30.0.41:80 -> ep-1', 'ns1/svc1:p80 nodePort from client to 192.168.0.3:3001 -> ep-1']);
      await lab(['down', 'upnp']);
    }, 600_000);
  }
});
