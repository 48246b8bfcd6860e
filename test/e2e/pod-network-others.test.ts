import { afterEach, describe, expect, it } from 'vitest';
import { lab, requireRoot } from './helpers.js';
import { verifiedSteps } from './pod-network-runs.js';

/**
 * Issue 17, beyond the seed scenarios (pod-network.test.ts, pod-network-bgp.test.ts): the other
 * built-in scenarios' walkthroughs pass in the host-gw, vxlan and bgp pod network modes too, in both
 * kube-proxy modes. Their paths stay on one node or follow kube-proxy's local-traffic rules, so
 * no mode-specific step is needed: this proves the mode changes nothing they claim.
 */

const root = requireRoot();
const SCENARIOS = ['affinity', 'nodeport-local', 'lb-source-ranges', 'loadbalancer-local', 'nodeport-multihomed'] as const;
const NAME = 'pno';

describe.skipIf(!root)('the other scenarios in the host-gw, vxlan and bgp pod network modes', () => {
  afterEach(async () => {
    await lab(['down', NAME]);
  });

  for (const mode of ['host-gw', 'vxlan', 'bgp'] as const) {
    for (const proxy of ['iptables', 'nftables'] as const) {
      for (const scenario of SCENARIOS) {
        it(`${scenario} in ${mode} mode, kube-proxy ${proxy}: every step passes`, async () => {
          const up = await lab(['up', scenario, '--name', NAME, '--set', `podNetwork.mode=${mode}`, '--set', `kubeProxy.mode=${proxy}`]);
          expect(up.exitCode, up.stderr).toBe(0);
          expect((await verifiedSteps(NAME)).length).toBeGreaterThan(0);
        });
      }
    }
  }
});
