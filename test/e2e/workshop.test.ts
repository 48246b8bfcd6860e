import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { lab, namespaces, requireRoot, type CliResult, workshopLabs } from './helpers.js';
import type { HealthReport } from '../../lab/workshop/health.js';
import type { Progress } from '../../lab/workshop/progress.js';
import type { ConntrackEntry } from '../../lab/kernel/conntrack.js';
import type { LabStatus } from '../../lab/api/status.js';

const root = requireRoot();
const LAB = 'ws-test';
const ABSENT = 'ws-absent';
const UPPED = 'ws-up';

describe.skipIf(!root)('lab workshop against a live nodeport lab', () => {
  const { dir, env } = workshopLabs('ws-e2e-', [LAB, UPPED]);
  /** The workshop as a learner runs it, with answers piped in on stdin. */
  const workshop = async (args: string[], answers: string[] = []): Promise<CliResult> => {
    return lab(['workshop', ...args], { input: answers.map((a) => `${a}\n`).join(''), env: env(), timeout: 110_000 });
  };
  const progress = (): Progress => JSON.parse(readFileSync(join(dir(), `${LAB}.json`), 'utf8')) as Progress;
  const curl = async () => JSON.parse((await lab(['exec', LAB, 'client', '--', 'curl', '-s', '10.240.0.4:32000'])).stdout) as { pod: string; client: string };
  const check = async (): Promise<{ exitCode: number; report: HealthReport }> => {
    const r = await workshop([LAB, '--check', '--json']);
    return { exitCode: r.exitCode, report: JSON.parse(r.stdout) as HealthReport };
  };

  beforeAll(async () => {
    const up = await lab(['up', 'nodeport', '--name', LAB]);
    expect(up.exitCode, up.stderr).toBe(0);
  });

  it('lists the workshops and the labs it can run on', async () => {
    const r = await workshop(['--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const list = JSON.parse(r.stdout) as { workshops: string[]; labs: { lab: string; scenario: string }[] };
    expect(list.workshops).toContain('nodeport');
    expect(list.labs).toContainEqual({ lab: LAB, scenario: 'nodeport' });
  });

  it('says to bring the lab up first when it is not (exit 5)', async () => {
    const r = await workshop(['nodeport', '--name', ABSENT]);
    expect(r.exitCode).toBe(5);
    expect(r.stderr).toContain(`lab "${ABSENT}" is not up: run "lab up nodeport --name ${ABSENT}" first, or add --up`);
    expect((await namespaces()).filter((n) => n.startsWith(`${ABSENT}-`))).toEqual([]);
  });

  it('--up brings the lab up first, then starts', async () => {
    const r = await workshop(['nodeport', '--name', UPPED, '--up'], ['quit']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`up lab ${UPPED}`);
    expect(r.stdout).toContain('Step 1 of 11');
    expect((await namespaces()).filter((n) => n.startsWith(`${UPPED}-`))).toHaveLength(6);
    // Already up: --up does nothing more.
    const again = await workshop(['nodeport', '--name', UPPED, '--up'], ['quit']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).not.toContain(`up lab ${UPPED}`);
    expect((await lab(['down', UPPED])).exitCode).toBe(0);
  });

  it('refuses a scenario the lab does not run', async () => {
    const r = await workshop(['clusterip', '--name', LAB]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`lab "${LAB}" runs nodeport, not clusterip`);
  });

  it('refuses --set that would give the lab that is up other settings (exit 5, as lab up of a lab that is up), and takes the ones it has', async () => {
    for (const args of [['nodeport', '--name', LAB], [LAB], [LAB, '--list']]) {
      const r = await workshop([...args, '--set', 'kubeProxy.mode=nftables'], ['quit']);
      expect(r.exitCode, args.join(' ')).toBe(5);
      expect(r.stderr).toContain(`lab "${LAB}" is up with other settings (built with no --set), and a lab keeps the settings it was built with: run "lab down ${LAB}" first, then "lab workshop nodeport --name ${LAB} --up --set kubeProxy.mode=nftables"`);
    }
    // The file's own mode, asked for: the same lab, so the workshop goes on.
    const same = await workshop([LAB, '--list', '--set', 'kubeProxy.mode=iptables']);
    expect(same.exitCode, same.stderr).toBe(0);
  });

  it('checks answers against the live lab, with hints after wrong ones, and saves progress at quit', async () => {
    const answer = await curl();
    const other = answer.pod === 'web-1' ? 'web-2' : 'web-1';
    const r = await workshop(['nodeport', '--name', LAB], [other, answer.pod, 'quit']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('Step 1 of 11: The client connects to the NodePort');
    expect(r.stdout).toContain(`$ lab exec ${LAB} client -- curl -s 10.240.0.4:32000`);
    expect(r.stdout).toContain(`answer> ${other}\n  not quite.\n  Hint 1/2:`);
    expect(r.stdout).toMatch(new RegExp(`answer> ${answer.pod}\\n {2}right: the lab says ${answer.pod} \\(`));
    expect(r.stdout).toContain('Step 2 of 11');
    expect(r.stdout).toContain(`stopped at step 2 of 11; progress is saved. Resume with: lab workshop ${LAB}`);
    expect(r.stdout).not.toMatch(/\u001b\[/); // no colour when not on a terminal
    const p = progress();
    expect(p).toMatchObject({ lab: LAB, scenario: 'nodeport' });
    expect(p.steps['first-request']).toMatchObject({ outcome: 'correct', attempts: 2, hints: 1, answer: answer.pod });
    expect(Object.keys(p.steps)).toEqual(['first-request']);
  });

  it('resumes where it stopped and runs to the end (lab name given directly)', async () => {
    // The answer to step 2 is in node1's conntrack table: the reply side of the client's connection.
    const entries = JSON.parse((await lab(['conntrack', LAB, 'node1', '--json'])).stdout) as ConntrackEntry[];
    const mine = entries.filter((e) => e.original.src === '10.241.0.4' && e.original.sport >= 32768);
    expect(mine).toHaveLength(1);
    const translatedTo = `${mine[0]!.reply.src}:${mine[0]!.reply.sport}`;

    const r = await workshop(
      [LAB],
      [
        translatedTo, // 2: one DNAT
        'KUBE-SVC-54WW65JLHZHRV7HC', // 3: wrong chain
        'kube-ext-54ww65jlhzhrv7hc', // 3: right, any case
        '-j KUBE-SVC-54WW65JLHZHRV7HC', // 4
        '1/2', // 5: probability, as a fraction
        '10.241.0.4', // 6: a common wrong answer, with its own feedback
        '10.240.0.4', // 6
        'run', // 7: the lab runs `ip route get` for the learner
        'eth0', // 7
        '10.244.1.2.8443', // 8: tcpdump's form
        'skip', // 9
        '10.240.0.4', // 10: port required
        '10.240.0.4:32000', // 10
        '127.0.0.0/8', // 11: KUBE-FIREWALL's -d
      ],
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const out = r.stdout;
    expect(out).toContain('welcome back: 1 of 11 steps done, continuing at step 2');
    expect(out).not.toContain('Step 1 of 11');
    expect(out).toContain(`right: the lab says ${translatedTo}`);
    expect(out).toContain('answer> KUBE-SVC-54WW65JLHZHRV7HC\n  not quite.');
    expect(out).toContain('right: the lab says KUBE-EXT-54WW65JLHZHRV7HC');
    expect(out).toContain('right: the lab says 0.5');
    expect(out).toContain("not quite: that is the client's own address");
    expect(out).toMatch(/10\.244\.1\.2 via 10\.240\.0\.1 dev eth0/); // the output of `run`
    expect(out).toContain('right: the lab says 10.244.1.2:8443');
    expect(out).toContain("skipped. The lab's answer: 10.244.0.1");
    expect(out.replace(/\s+/g, ' ')).toContain('almost: right address; now the port too (address:port) (not counted as a try)');
    expect(out).toContain('right: the lab says 10.240.0.4:32000');
    expect(out).toContain('Workshop complete. 10 of 11 answered');

    const p = progress();
    expect(Object.keys(p.steps)).toHaveLength(11);
    expect(p.steps['snat-cross-node']).toMatchObject({ outcome: 'correct', attempts: 2 });
    expect(p.steps['snat-same-node']).toMatchObject({ outcome: 'skipped' });
    expect(p.steps.reply).toMatchObject({ outcome: 'correct', attempts: 1, hints: 0 }); // the missing port was not counted

    const list = await workshop([LAB, '--list', '--json']);
    const listed = JSON.parse(list.stdout) as { score: { done: number; correct: number; skipped: number }; steps: { id: string; status: string }[] };
    expect(listed.score).toMatchObject({ done: 11, correct: 10, skipped: 1 });
    expect(listed.steps.find((s) => s.id === 'snat-same-node')?.status).toBe('skipped');
  });

  it('says so when a finished workshop is run again, and starts over with --reset', async () => {
    const again = await workshop([LAB]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain('Workshop complete. 10 of 11 answered');
    expect(again.stdout).not.toContain('Step 1 of 11');

    const reset = await workshop([LAB, '--reset'], ['quit']);
    expect(reset.exitCode).toBe(0);
    expect(reset.stdout).toContain('Step 1 of 11');
    expect(progress().steps).toEqual({});
  });

  it('does not count a question it cannot check yet', async () => {
    // No connection of the learner's newer than 120 s is needed here: ask for step 2 with
    // the table flushed, so there is nothing to read.
    expect((await lab(['exec', LAB, 'node1', '--', 'conntrack', '-F'])).exitCode).toBe(0);
    const r = await workshop([LAB, '--reset'], ['skip', '10.244.1.2', 'quit']);
    expect(r.stdout).toContain("node1's connection-tracking table holds no connection from 10.241.0.4 to 10.240.0.4:32000");
    expect(progress().steps['one-dnat']).toBeUndefined();
  });

  it('--check passes on a healthy lab', async () => {
    const { exitCode, report } = await check();
    expect(exitCode).toBe(0);
    expect(report.healthy).toBe(true);
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([
      ['lab is up', true],
      ['namespaces present', true],
      ['workloads running', true],
      ['pod network (routed)', true],
      ['kube-proxy rules on node1', true],
      ['kube-proxy rules on node2', true],
      ['client -> 10.240.0.4:32000 answers', true],
    ]);
    const text = await workshop([LAB, '--check']);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/ok {3}kube-proxy rules on node1 +all \d+ present/);
    expect(text.stdout.trim().endsWith('healthy')).toBe(true);
  });

  it('--check fails (exit 1) once a rule is deleted, and names it', async () => {
    const del = await lab(['exec', LAB, 'node1', '--', 'iptables', '-t', 'nat', '-D', 'KUBE-SVC-54WW65JLHZHRV7HC', '2']);
    expect(del.exitCode, del.stderr).toBe(0);
    const { exitCode, report } = await check();
    expect(exitCode).toBe(1);
    expect(report.healthy).toBe(false);
    const rules = report.checks.find((c) => c.name === 'kube-proxy rules on node1')!;
    expect(rules.ok).toBe(false);
    expect(rules.detail).toMatch(/^1 of \d+ missing, first: -t nat -A KUBE-SVC-54WW65JLHZHRV7HC .*10\.244\.0\.3:8443/);
    expect(report.checks.find((c) => c.name === 'kube-proxy rules on node2')!.ok).toBe(true);
  });

  it('--check fails once a workload is killed', async () => {
    const status = JSON.parse((await lab(['status', LAB, '--json'])).stdout) as LabStatus[];
    const web2 = status[0]!.workloads.find((w) => w.pod === 'web-2')!;
    process.kill(web2.pid, 'SIGKILL');
    const { exitCode, report } = await check();
    expect(exitCode).toBe(1);
    // One workload process serves every pod of the lab: killing it stops web-1's workload too.
    expect(report.checks.find((c) => c.name === 'workloads running')).toMatchObject({ ok: false, detail: 'stopped: web-1, web-2' });
    // With web-1's rule gone and web-2 dead, nothing answers at the NodePort.
    expect(report.checks.find((c) => c.name.endsWith('answers'))!.ok).toBe(false);
  });

  it('--check on a lab that is not up fails and says so', async () => {
    const r = await workshop([ABSENT, '--check', '--json']);
    expect(r.exitCode).toBe(1);
    const report = JSON.parse(r.stdout) as HealthReport;
    expect(report.checks[0]).toEqual({ name: 'lab is up', ok: false, detail: `lab ${ABSENT} is not up` });
    expect(report.checks.slice(1).every((c) => c.ok === null)).toBe(true);
  });
});

/** Every shipped workshop's checks can be read from its live lab: skip through all steps. */
describe.skipIf(!root)('every step of the other workshops reads its answer from a live lab', () => {
  const cases = [
    { scenario: 'clusterip', name: 'ws-t-cip', from: 'frontend', to: '172.31.0.5:443' },
    { scenario: 'loadbalancer', name: 'ws-t-lb', from: 'client', to: '10.240.0.100:443' },
  ];
  const { dir } = workshopLabs('ws-e2e-', cases.map((c) => c.name));

  for (const c of cases) {
    it(`${c.scenario}: every step has a live answer, and --check passes`, async () => {
      const up = await lab(['up', c.scenario, '--name', c.name]);
      expect(up.exitCode, up.stderr).toBe(0);
      // The learner's own request, for the steps that ask about "your most recent request".
      expect((await lab(['exec', c.name, c.from, '--', 'curl', '-s', c.to])).exitCode).toBe(0);
      const steps = JSON.parse((await lab(['workshop', c.name, '--list', '--json'], { env: { LAB_WORKSHOP_DIR: dir() } })).stdout) as { steps: unknown[] };
      const r = await lab(['workshop', c.name], { input: 'skip\n'.repeat(steps.steps.length), env: { LAB_WORKSHOP_DIR: dir(), NO_COLOR: '1' }, timeout: 110_000 });
      expect(r.exitCode, r.stderr).toBe(0);
      const out = r.stdout;
      expect(out.match(/skipped\. The lab's answer: \S+/g) ?? [], out).toHaveLength(steps.steps.length);
      expect(out).not.toContain('could not read');
      expect(out).toContain(`0 of ${steps.steps.length} answered (0 at the first try), ${steps.steps.length} skipped`);

      const check = await lab(['workshop', c.name, '--check', '--json']);
      expect(check.exitCode, check.stdout).toBe(0);
      expect((JSON.parse(check.stdout) as HealthReport).healthy).toBe(true);
      expect((await lab(['down', c.name])).exitCode).toBe(0);
    });
  }
});
