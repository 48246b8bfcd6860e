/**
 * The health check benchmark (`bench.js health [rounds]`): how long the load balancer takes to
 * follow kube-proxy's health check node port. In each proxy mode, `lab up loadbalancer-local`,
 * then rounds of `lab kill … web-2` and `lab revive … web-2`; each verb reports (--json) how long
 * it waited, after sending the new counts, until the router's route had the next hops the
 * probes must settle on. Prints min / median / max of those waits and of the verbs themselves.
 * Root only, inside its own lab names.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../lab/util/project.js';

const exec = promisify(execFile);
const cli = join(PROJECT_ROOT, 'dist', 'lab', 'cli', 'main.js');

interface Follow {
  via: string[];
  settled: boolean;
  ms: number;
}

async function verb(args: string[]): Promise<{ ms: number; lb: Follow }> {
  const t0 = performance.now();
  const { stdout } = await exec(process.execPath, [cli, ...args, '--json'], { maxBuffer: 16 * 1024 * 1024 });
  const lb = (JSON.parse(stdout) as { loadBalancers: Follow[] }).loadBalancers[0]!;
  if (!lb.settled) throw new Error(`${args.join(' ')}: the load balancer did not follow (${JSON.stringify(lb)})`);
  return { ms: performance.now() - t0, lb };
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const fmt = (x: number) => `${Math.round(x)} ms`;
  return `min ${fmt(s[0]!)}, median ${fmt(s[Math.floor(s.length / 2)]!)}, max ${fmt(s[s.length - 1]!)}`;
};

export async function healthBenchmark(rounds: number): Promise<void> {
  console.log(`kube-packet-lab health check benchmark: loadbalancer-local, ${rounds} kill/revive rounds per mode, node ${process.version}`);
  for (const mode of ['iptables', 'nftables']) {
    const lab = `bench-hc-${mode.slice(0, 3)}`;
    await exec(process.execPath, [cli, 'down', lab]).catch(() => undefined);
    const kills: { ms: number; lb: Follow }[] = [];
    const revives: { ms: number; lb: Follow }[] = [];
    try {
      await exec(process.execPath, [cli, 'up', 'loadbalancer-local', '--name', lab, '--set', `kubeProxy.mode=${mode}`]);
      for (let i = 0; i < rounds; i++) {
        kills.push(await verb(['kill', lab, 'web-2']));
        revives.push(await verb(['revive', lab, 'web-2']));
      }
    } finally {
      await exec(process.execPath, [cli, 'down', lab]).catch(() => undefined);
    }
    console.log(`  ${mode}: node2 out of the route after kill   ${stats(kills.map((k) => k.lb.ms))} (lab kill: ${stats(kills.map((k) => k.ms))})`);
    console.log(`  ${mode}: node2 back in the route after revive ${stats(revives.map((r) => r.lb.ms))} (lab revive: ${stats(revives.map((r) => r.ms))})`);
  }
}
