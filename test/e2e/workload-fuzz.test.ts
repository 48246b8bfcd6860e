import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabStatus } from '../../lab/api/status.js';
import { isAlive } from '../../lab/kernel/processes.js';
import { labDir } from '../../lab/state/store.js';
import { lab, requireRoot, ROOT } from './helpers.js';

/**
 * Issue 16, item 1: one workload process serves every pod of a lab, so no bytes a client sends
 * to any pod socket may end it. A seeded stream of malformed HTTP, mutated DNS over UDP and TCP,
 * and garbage to kube-proxy's health check node port; afterwards every pod still answers and the
 * process is the same one. The seed is printed, and LAB_FUZZ_SEED replays it.
 */
const root = requireRoot();
const SEED = Number(process.env.LAB_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CASES = Number(process.env.LAB_FUZZ_CASES ?? 300);
const replay = `seed ${SEED}: replay with LAB_FUZZ_SEED=${SEED} LAB_FUZZ_CASES=${CASES}`;
const FUZZER = join(ROOT, 'dist', 'scripts', 'fuzz-pods.js');

const CI = 'fuzz-ci';
const LB = 'fuzz-lb';

async function workloadPid(name: string): Promise<number> {
  const [s] = JSON.parse((await lab(['status', name, '--json'])).stdout) as LabStatus[];
  const pids = new Set(s!.workloads.map((w) => w.pid));
  expect(pids.size).toBe(1);
  return [...pids][0]!;
}

/** One plain request from a host of the lab: the answer's pod name, or what went wrong. */
async function ask(name: string, from: string, url: string): Promise<string> {
  const r = await lab(['exec', name, from, '--', 'curl', '-sS', '--max-time', '3', url]);
  if (r.exitCode !== 0) return `failed: ${r.stderr.trim()}`;
  try {
    return (JSON.parse(r.stdout) as { pod: string }).pod;
  } catch {
    return r.stdout.trim();
  }
}

async function runFuzzer(name: string, from: string, args: string[]): Promise<Record<string, number>> {
  const r = await lab(['exec', name, from, '--', process.execPath, FUZZER, '--seed', String(SEED), '--cases', String(CASES), ...args], { timeout: 240_000 });
  expect(r.exitCode, `fuzzer (${replay}): ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as Record<string, number>;
}

const uncaught = (name: string) =>
  readFileSync(join(labDir(name), 'workloads.log'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('uncaught'));

describe.skipIf(!root)('the workload process survives any bytes a client sends', () => {
  beforeAll(async () => {
    console.log(`workload fuzz: ${replay}`);
    for (const [scenario, name] of [['clusterip', CI], ['loadbalancer-local', LB]] as const) {
      await lab(['down', name]);
      const up = await lab(['up', scenario, '--name', name]);
      expect(up.exitCode, up.stderr).toBe(0);
    }
  });
  afterAll(async () => {
    await lab(['down', CI]);
    await lab(['down', LB]);
  });

  it('answers the request targets that killed every pod (//, ///x, //:99999)', async () => {
    const pid = await workloadPid(CI);
    for (const target of ['//', '///x', '//:99999', '/?delay=%', '/%zz']) {
      expect(await ask(CI, 'frontend', `http://10.244.0.3:8443${target}`), target).toBe('web-1');
    }
    expect(await workloadPid(CI)).toBe(pid);
    expect(isAlive(pid)).toBe(true);
  });

  it('HTTP pods and the DNS pod (UDP and TCP): every pod answers afterwards, from the same process', async () => {
    const pid = await workloadPid(CI);
    const tally = await runFuzzer(CI, 'frontend', ['--http', '10.244.0.3:8443,10.244.1.2:8443,172.31.0.5:443', '--dns', '10.244.1.10:53,172.31.0.10:53']);
    // The fuzz reached the servers: most connections were taken and many were answered.
    expect(tally.connections, replay).toBeGreaterThan(CASES * 3);
    expect(tally.refused, `${replay}: ${JSON.stringify(tally)}`).toBe(0);
    expect(tally.answered, replay).toBeGreaterThan(0);
    expect(tally.datagramAnswers, replay).toBeGreaterThan(0);

    expect(isAlive(pid), `workload process ${pid} died (${replay})`).toBe(true);
    expect(await workloadPid(CI), replay).toBe(pid);
    expect(await ask(CI, 'frontend', 'http://10.244.0.3:8443/'), replay).toBe('web-1');
    expect(await ask(CI, 'frontend', 'http://10.244.1.2:8443/'), replay).toBe('web-2');
    const dns = await lab(['exec', CI, 'frontend', '--', 'getent', 'ahostsv4', 'web.default.svc.cluster.local']);
    expect(dns.stdout, replay).toContain('172.31.0.5');
    expect(uncaught(CI), replay).toEqual([]);
  });

  it('the health check node port, the NodePort and the load balancer IP: every server answers afterwards', async () => {
    const pid = await workloadPid(LB);
    const tally = await runFuzzer(LB, 'client', ['--http', '10.240.0.4:32100,10.240.0.5:32100,10.240.0.4:32000,10.240.0.100:443']);
    expect(tally.connections, replay).toBeGreaterThan(CASES * 3);
    expect(tally.answered, replay).toBeGreaterThan(0);

    expect(isAlive(pid), `workload process ${pid} died (${replay})`).toBe(true);
    expect(await workloadPid(LB), replay).toBe(pid);
    for (const node of ['10.240.0.4', '10.240.0.5']) {
      const health = await lab(['exec', LB, 'client', '--', 'curl', '-sS', '--max-time', '3', '-o', '/dev/null', '-w', '%{http_code}', `http://${node}:32100/healthz`]);
      expect(health.stdout, `${node} (${replay})`).toBe('200');
    }
    expect(await ask(LB, 'node1', 'http://10.244.0.3:8443/'), replay).toBe('web-1');
    expect(await ask(LB, 'node2', 'http://10.244.1.2:8443/'), replay).toBe('web-2');
    expect(uncaught(LB), replay).toEqual([]);
  });
});
