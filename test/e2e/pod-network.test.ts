import { afterAll, describe, expect, it } from 'vitest';
import { lab, requireRoot, sh } from './helpers.js';
import { POD_NETWORK_SCENARIOS, SHORT, verifiedSteps, verifyAfterwards, type Step } from './pod-network-runs.js';

/**
 * Issue 17: every seed scenario's walkthrough, and internal-local's (whose NodePort path crosses
 * between the nodes) with its unready variant on the same lab, in the routed, host-gw and vxlan
 * pod network modes and both kube-proxy modes, against the real kernel, plus the kernel state each
 * mode leaves: flannel.1 and its neighbour and FDB entries, the routes, and what the router holds.
 * bgp mode's runs are in pod-network-bgp.test.ts.
 */

const root = requireRoot();
const MODES = ['routed', 'host-gw', 'vxlan'] as const;
const PROXIES = ['iptables', 'nftables'] as const;

const names: string[] = [];

describe.skipIf(!root)('pod network modes against the real kernel', () => {
  afterAll(async () => {
    for (const name of names) await lab(['down', name]);
  });

  for (const scenario of POD_NETWORK_SCENARIOS) {
    for (const mode of MODES) {
      for (const proxy of PROXIES) {
        const name = `pn-${SHORT[scenario]}-${mode}-${proxy.slice(0, 3)}`;
        names.push(name);
        it(`${scenario} in ${mode} mode, kube-proxy ${proxy}: every step passes`, async () => {
          const up = await lab(['up', scenario, '--name', name, '--set', `podNetwork.mode=${mode}`, '--set', `kubeProxy.mode=${proxy}`]);
          expect(up.exitCode, up.stderr).toBe(0);
          await expectModeOnTheWire(name, mode, await verifiedSteps(name));
          await verifyAfterwards(scenario, name);
          await lab(['down', name]);
        });
      }
    }
  }
});

/** What each mode must have shown, beyond passing: the steps of its own, and the kernel state it made. */
async function expectModeOnTheWire(name: string, mode: (typeof MODES)[number], steps: Step[]): Promise<void> {
  const routerRoutes = await sh('ip', ['-n', `${name}-router`, 'route', 'show']);
  const node1 = `${name}-node1`;
  if (mode === 'routed') {
    expect(routerRoutes).toMatch(/10\.244\.1\.0\/24 via 10\.240\.0\.5/);
    expect(steps.some((s) => s.seen.includes('VXLAN'))).toBe(false);
    return;
  }
  expect(routerRoutes).not.toContain('10.244.');
  if (mode === 'host-gw') {
    expect(await sh('ip', ['-n', node1, 'route', 'show', '10.244.1.0/24'])).toMatch(/via 10\.240\.0\.5 dev eth0/);
    return;
  }
  // vxlan: the device as flanneld makes it, and the datagrams verify decoded.
  const link = await sh('ip', ['-n', node1, '-d', 'link', 'show', 'flannel.1']);
  expect(link).toMatch(/mtu 1450 /);
  expect(link).toMatch(/vxlan id 1 local 10\.240\.0\.4 dev eth0 .*dstport 8472 nolearning/);
  expect(await sh('ip', ['-n', node1, 'route', 'show', '10.244.1.0/24'])).toMatch(/via 10\.244\.1\.0 dev flannel\.1 onlink/);
  expect(await sh('ip', ['-n', node1, 'neigh', 'show', 'dev', 'flannel.1'])).toMatch(/10\.244\.1\.0 lladdr 0e:fa:0a:f0:00:05 PERMANENT/);
  expect(await sh('bridge', ['-n', node1, 'fdb', 'show', 'dev', 'flannel.1'])).toMatch(/0e:fa:0a:f0:00:05 dst 10\.240\.0\.5 self permanent/);
  expect(await sh('ip', ['-n', node1, 'link', 'show', 'cbr0'])).toMatch(/mtu 1450 /);
  const tunnelled = steps.filter((s) => s.status === 'pass' && /^UDP 10\.240\.0\.[45]:\d+ > 10\.240\.0\.[45]:8472 VXLAN vni 1 \(\d+ bytes\) carrying 10\.244\./.test(s.seen));
  expect(tunnelled.length).toBeGreaterThanOrEqual(2);
}
