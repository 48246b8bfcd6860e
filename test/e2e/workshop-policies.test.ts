import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lab, requireRoot, type CliResult, workshopLabs } from './helpers.js';
import type { PodAnswer } from '../../lab/verify/flows.js';
import type { Progress } from '../../lab/workshop/progress.js';

/**
 * The workshops of the traffic-policy scenarios (nodeport-local, internal-local, affinity,
 * lb-source-ranges, loadbalancer-local),
 * run against live labs: every step's check reads an answer from the running lab, a learner
 * who pipes in the right answers (read from the lab the way a learner would) finishes with
 * all of them right at the first try, and `--check` finds the lab healthy.
 */

const root = requireRoot();

type Answer = Pick<PodAnswer, 'pod' | 'client'>;

/** Each scenario's learner: its own requests first, then the answers to the steps, in order. */
interface Case {
  scenario: string;
  name: string;
  /** The learner's own request, for the steps about "your most recent request". */
  from: string;
  to: string;
  answers: (l: Learner) => Promise<string[]>;
  /** Step ids in order, to catch a workshop whose steps moved without its test. */
  ids: string[];
}

interface Learner {
  curl(from: string, to: string): Promise<Answer>;
}

const cases: Case[] = [
  {
    scenario: 'nodeport-local',
    name: 'wsp-etp',
    from: 'client',
    to: '10.240.0.4:32000',
    ids: ['first-request', 'reply-goes-to', 'ext-last-jump', 'svl-endpoints', 'client-seen', 'node2-nodeport', 'pod-reply', 'client-reply'],
    answers: async (l) => {
      const a = await l.curl('client', '10.240.0.4:32000');
      // Local: node1 only ever picks its own pod, and the pod sees the client's own address and port.
      expect(a.pod).toBe('web-1');
      expect(a.client).toMatch(/^10\.241\.0\.4:\d+$/);
      return [
        a.pod, // 1: the pod that answered
        a.client, // 2: conntrack's reply goes to the client's own address and port
        'KUBE-SVL-54WW65JLHZHRV7HC', // 3: KUBE-EXT's last jump
        '1', // 4: endpoint rules in KUBE-SVL
        '10.241.0.4', // 5: what web-1 saw
        'web-2', // 6: through node2's NodePort
        '10.241.0.4', // 7: web-1's SYN-ACK goes to the client itself
        '10.240.0.4:32000', // 8: what the client sees
      ];
    },
  },
  {
    scenario: 'internal-local',
    name: 'wsp-itp',
    from: 'frontend',
    to: '172.31.0.5:443',
    ids: ['first-request', 'clusterip-rule', 'one-endpoint', 'frontend2', 'no-snat', 'nodeport-chain', 'nodeport-crosses'],
    answers: async (l) => {
      const a = await l.curl('frontend', '172.31.0.5:443');
      expect(a.pod).toBe('web-1');
      return [
        a.pod, // 1
        'KUBE-SVL-54WW65JLHZHRV7HC', // 2: the ClusterIP rule's jump
        '1', // 3: "only one endpoint"
        'web-2', // 4: frontend2's pod
        '10.244.0.10', // 5: no SNAT pod to pod
        'KUBE-SVC-54WW65JLHZHRV7HC', // 6: the NodePort still goes to KUBE-SVC
        '10.240.0.4', // 7: web-2 sees node1 through the NodePort
      ];
    },
  },
  {
    scenario: 'affinity',
    name: 'wsp-aff',
    from: 'client',
    to: '10.240.0.4:32000',
    ids: ['first-request', 'svc-rules', 'remember-seconds', 'list-name', 'sticky', 'snat', 'node2', 'frontend'],
    answers: async (l) => {
      // Which pod each client sticks to is the lab's random choice: read it as a learner would,
      // and check that it stays.
      const viaNode1 = await l.curl('client', '10.240.0.4:32000');
      for (let i = 0; i < 5; i++) expect((await l.curl('client', '10.240.0.4:32000')).pod).toBe(viaNode1.pod);
      const viaNode2 = await l.curl('client', '10.240.0.5:32000');
      const frontend = await l.curl('frontend', '172.31.0.5:443');
      const last = await l.curl('client', '10.240.0.4:32000');
      expect(last.pod).toBe(viaNode1.pod);
      return [
        last.pod, // 1
        '4', // 2: endpoint rules in KUBE-SVC (two --rcheck, two random)
        '10800', // 3: --seconds
        'KUBE-SEP-OU66A2EEGSXLULNT', // 4: the first --rcheck rule's list (web-1's chain)
        viaNode1.pod, // 5: still the same pod
        viaNode1.pod === 'web-2' ? '10.240.0.4' : '10.244.0.1', // 6: masqueraded as usual
        viaNode2.pod, // 7: node2's own choice
        frontend.pod, // 8: the frontend's own pod
      ];
    },
  },
  {
    scenario: 'lb-source-ranges',
    name: 'wsp-lsr',
    from: 'client',
    to: '10.240.0.100:443',
    ids: ['allowed-client', 'lb-rule', 'allowed-range', 'outsider', 'external-ip'],
    answers: async (l) => {
      const a = await l.curl('client', '10.240.0.100:443');
      return [
        a.pod === 'web-1' ? '10.244.0.3:8443' : '10.244.1.2:8443', // 1: node1's translation of this request
        'KUBE-FW-54WW65JLHZHRV7HC', // 2: the LB IP's rule jumps to the firewall chain
        '10.241.0.0/28', // 3: its first rule's -s
        'no', // 4: outsider is dropped
        'KUBE-EXT-54WW65JLHZHRV7HC', // 5: the external IP skips KUBE-FW
      ];
    },
  },
  {
    scenario: 'loadbalancer-local',
    name: 'wsp-lbl',
    from: 'client',
    to: '10.240.0.100:443',
    ids: ['real-client', 'ext-last-jump', 'health-port', 'health-answer', 'next-hops'],
    answers: async (l) => {
      expect((await l.curl('client', '10.240.0.100:443')).client).toMatch(/^10\.241\.0\.4:\d+$/);
      return ['10.241.0.4', 'KUBE-SVL-54WW65JLHZHRV7HC', '32100', '200', '2'];
    },
  },
];

describe.skipIf(!root)('workshops of the traffic-policy scenarios, against live labs', () => {
  const { dir, env } = workshopLabs('wsp-e2e-', cases.map((c) => c.name));
  const workshop = async (args: string[], input: string[]): Promise<CliResult> => {
    return lab(['workshop', ...args], { input: input.map((a) => `${a}\n`).join(''), env: env(), timeout: 110_000 });
  };

  for (const c of cases) {
    it(`${c.scenario}: every step reads a live answer, the right answers finish it, --check passes`, async () => {
      const up = await lab(['up', c.scenario, '--name', c.name]);
      expect(up.exitCode, up.stderr).toBe(0);
      const learner: Learner = {
        curl: async (from, to) => {
          const r = await lab(['exec', c.name, from, '--', 'curl', '-s', '--max-time', '5', to]);
          expect(r.exitCode, r.stderr).toBe(0);
          return JSON.parse(r.stdout) as Answer;
        },
      };

      const listed = JSON.parse((await lab(['workshop', c.name, '--list', '--json'], { env: { LAB_WORKSHOP_DIR: dir() } })).stdout) as { steps: { id: string }[] };
      expect(listed.steps.map((s) => s.id)).toEqual(c.ids);
      const n = c.ids.length;

      // 1. Skip through: every step's check has an answer in the live lab.
      await learner.curl(c.from, c.to);
      const skipped = await workshop([c.name], Array<string>(n).fill('skip'));
      expect(skipped.exitCode, skipped.stderr).toBe(0);
      expect(skipped.stdout.match(/skipped\. The lab's answer: \S+/g) ?? [], skipped.stdout).toHaveLength(n);
      expect(skipped.stdout).not.toContain('could not read');
      expect(skipped.stdout).toContain(`0 of ${n} answered (0 at the first try), ${n} skipped`);

      // 2. A learner with the right answers, all at the first try.
      const answers = await c.answers(learner);
      expect(answers).toHaveLength(n);
      const r = await workshop([c.name, '--reset'], answers);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout, r.stdout).toContain(`Workshop complete. ${n} of ${n} answered (${n} at the first try), 0 skipped.`);
      expect(r.stdout).not.toContain('not quite');
      expect(r.stdout).not.toContain('cannot check yet');
      const progress = JSON.parse(readFileSync(join(dir(), `${c.name}.json`), 'utf8')) as Progress;
      expect(Object.keys(progress.steps)).toEqual(c.ids);
      expect(Object.values(progress.steps).every((s) => s.outcome === 'correct' && s.attempts === 1)).toBe(true);

      // 3. The instructor's health check.
      const check = await lab(['workshop', c.name, '--check']);
      expect(check.exitCode, check.stdout).toBe(0);
      expect(check.stdout.trim().endsWith('healthy')).toBe(true);
      expect((await lab(['down', c.name])).exitCode).toBe(0);
    });
  }

  it('nodeport-local: answers from the Cluster world get the workshop\'s own feedback', async () => {
    const name = 'wsp-etp';
    expect((await lab(['up', 'nodeport-local', '--name', name])).exitCode).toBe(0);
    const a = JSON.parse((await lab(['exec', name, 'client', '--', 'curl', '-s', '10.240.0.4:32000'])).stdout) as Answer;
    const r = await workshop(
      [name, '--reset'],
      [
        a.pod,
        '10.240.0.4', // 2: the masqueraded answer from the nodeport lab
        '10.241.0.4', // 2: right address, port missing
        a.client, // 2
        'KUBE-SVC-54WW65JLHZHRV7HC', // 3: the chain under Cluster
        'kube-svl-54ww65jlhzhrv7hc', // 3
        'quit',
      ],
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain("not quite: that is node1's own address, what a masqueraded connection would expect");
    expect(r.stdout.replace(/\s+/g, ' ')).toContain('almost: right address; now the port too (address:port) (not counted as a try)');
    expect(r.stdout).toContain(`right: the lab says ${a.client}`);
    expect(r.stdout).toContain('not quite: the first and third rules jump there');
    expect(r.stdout).toContain('right: the lab says KUBE-SVL-54WW65JLHZHRV7HC');
    expect(r.stdout).toContain('stopped at step 4 of 8');
    expect((await lab(['down', name])).exitCode).toBe(0);
  });
});
