import { expect } from 'vitest';
import { lab } from './helpers.js';

/**
 * What the pod network e2e files (pod-network.test.ts, pod-network-bgp.test.ts) share: the
 * scenarios run in every mode, the walkthroughs run afterwards on the same lab, and a verify
 * that must pass every step.
 */

/** The three seed scenarios, and internal-local, whose NodePort path crosses between the nodes. */
export const POD_NETWORK_SCENARIOS = ['nodeport', 'clusterip', 'loadbalancer', 'internal-local'] as const;
export type PodNetworkScenario = (typeof POD_NETWORK_SCENARIOS)[number];
/** Short names, so a lab's namespace names stay within the kernel's 15 characters. */
export const SHORT: Record<PodNetworkScenario, string> = { nodeport: 'np', clusterip: 'cip', loadbalancer: 'lb', 'internal-local': 'itp' };
/** Walkthroughs run on the same lab after the scenario's own, once a command has changed it. */
const AFTERWARDS: Partial<Record<PodNetworkScenario, { change: (lab: string) => string[]; walkthrough: string }>> = {
  'internal-local': { change: (name) => ['kill', name, 'web-2'], walkthrough: 'internal-local-unready' },
};

export interface Step {
  step: string;
  title: string;
  status: string;
  seen: string;
  expected: string;
}

/** `lab verify` of a running lab: every step passes (the failures in the message when not), exit 0. */
export async function verifiedSteps(name: string, walkthrough?: string): Promise<Step[]> {
  const v = await lab(['verify', name, '--json', ...(walkthrough ? ['--walkthrough', walkthrough] : [])]);
  const steps = (JSON.parse(v.stdout) as { paths: { steps: Step[] }[] }).paths.flatMap((p) => p.steps);
  const failed = steps.filter((s) => s.status === 'fail');
  expect(failed, JSON.stringify(failed, null, 2)).toEqual([]);
  expect(v.exitCode).toBe(0);
  return steps;
}

/** The scenario's follow-up walkthroughs, each after its change, on the same running lab. */
export async function verifyAfterwards(scenario: PodNetworkScenario, name: string): Promise<void> {
  const then = AFTERWARDS[scenario];
  if (!then) return;
  const changed = await lab(then.change(name));
  expect(changed.exitCode, changed.stderr).toBe(0);
  await verifiedSteps(name, then.walkthrough);
}
