import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import type { LabStatus } from '../../lab/api/status.js';
import type { LabState } from '../../lab/state/store.js';
import { lab, namespaces, requireRoot, sh, startLab } from './helpers.js';
import { POD_NETWORK_SCENARIOS, SHORT, verifiedSteps, verifyAfterwards } from './pod-network-runs.js';

/**
 * Issue 17, podNetwork mode bgp: a real BIRD in every node and the router. Every seed
 * scenario's walkthrough, and internal-local's with its unready variant, in both kube-proxy
 * modes; the route the packet follows learned by BGP (proto bird, no static pod route anywhere);
 * a stopped BIRD's route withdrawn within the hold time; a BIRD that fails or never peers fails `up` with its log (exit 4) and rolls back; and a
 * stop signal or SIGKILL at any point of `up` leaves no BIRD running that `lab down` misses.
 */

const root = requireRoot();
const PROXIES = ['iptables', 'nftables'] as const;
const STATE = '/run/kube-packet-lab';
/** BGP's hold time in the lab's BIRD configurations (lab/plan/bird.ts). */
const HOLD_S = 3;

const names: string[] = [];
const bgp = (name: string, extra: string[] = []) => ['up', 'nodeport', '--name', name, '--set', 'podNetwork.mode=bgp', ...extra];
const stateOf = (name: string): LabState | undefined => {
  try {
    return JSON.parse(readFileSync(join(STATE, name, 'state.json'), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
};
/** The BIRDs running for a lab: their command line names its state folder. */
const birdsOf = async (name: string) => (await sh('ps', ['-eo', 'pid,args'])).split('\n').filter((l) => /\bbird -f /.test(l) && l.includes(`${STATE}/${name}/bird/`));
const routerRoutes = (name: string) => sh('ip', ['-n', `${name}-router`, '-4', 'route', 'show']);

describe.skipIf(!root)('podNetwork mode bgp against the real kernel', () => {
  afterAll(async () => {
    for (const name of names) await lab(['down', name]);
  });

  for (const scenario of POD_NETWORK_SCENARIOS) {
    for (const proxy of PROXIES) {
      const name = `bgp-${SHORT[scenario]}-${proxy.slice(0, 3)}`;
      names.push(name);
      it(`${scenario}, kube-proxy ${proxy}: every step passes, over routes learned by BGP`, async () => {
        const up = await lab(['up', scenario, '--name', name, '--set', 'podNetwork.mode=bgp', '--set', `kubeProxy.mode=${proxy}`]);
        expect(up.exitCode, up.stderr).toBe(0);
        const routes = await routerRoutes(name);
        expect(routes).toMatch(/^10\.244\.0\.0\/24 via 10\.240\.0\.4 dev br-nodes proto bird /m);
        expect(routes).toMatch(/^10\.244\.1\.0\/24 via 10\.240\.0\.5 dev br-nodes proto bird /m);
        expect(routes.split('\n').filter((l) => l.startsWith('10.244.') && !l.includes('proto bird'))).toEqual([]);
        const steps = await verifiedSteps(name);
        expect(steps.some((s) => s.status === 'pass' && / proto bird$/.test(s.seen))).toBe(true);
        expect(steps.some((s) => s.status === 'pass' && /^router ↔ node\d: up Established$/.test(s.seen))).toBe(true);
        await verifyAfterwards(scenario, name);
        expect((await lab(['down', name])).exitCode).toBe(0);
        expect(await birdsOf(name)).toEqual([]);
      });
    }
  }

  it('lab status shows each session; a frozen BIRD loses its route within the hold time, a killed one at once', async () => {
    const name = 'bgp-withdraw';
    names.push(name);
    const up = await lab(bgp(name));
    expect(up.exitCode, up.stderr).toBe(0);
    const status = JSON.parse((await lab(['status', name, '--json'])).stdout) as LabStatus[];
    expect(status[0]!.daemons.find((d) => d.host === 'router')!.sessions.map((s) => `${s.peer} ${s.info}`)).toEqual(['node1 Established', 'node2 Established']);
    const node2 = stateOf(name)!.daemons!.find((d) => d.host === 'node2')!;
    const node1 = stateOf(name)!.daemons!.find((d) => d.host === 'node1')!;

    // SIGSTOP: node2's BIRD sends nothing more (no keepalive, no notification): only the router's hold timer notices.
    process.kill(node2.pid, 'SIGSTOP');
    const frozen = performance.now();
    const gone = await until(async () => !(await routerRoutes(name)).includes('10.244.1.0/24'), (HOLD_S + 2) * 1000);
    const frozenMs = performance.now() - frozen;
    process.kill(node2.pid, 'SIGCONT');
    expect(gone, `10.244.1.0/24 still on the router ${Math.round(frozenMs)} ms after node2's BIRD froze`).toBe(true);
    expect(frozenMs).toBeGreaterThan((HOLD_S - 1.5) * 1000); // the hold timer did it, not a closed socket
    console.log(`bgp: route withdrawn ${Math.round(frozenMs)} ms after node2's BIRD froze (hold time ${HOLD_S} s)`);
    // Thawed, it peers again and the route comes back.
    expect(await until(async () => (await routerRoutes(name)).includes('10.244.1.0/24 via 10.240.0.5'), 10_000)).toBe(true);

    // SIGKILL: its TCP connection is closed by the kernel, the router withdraws at once.
    process.kill(node1.pid, 'SIGKILL');
    const killed = performance.now();
    expect(await until(async () => !(await routerRoutes(name)).includes('10.244.0.0/24'), (HOLD_S + 2) * 1000)).toBe(true);
    const killedMs = performance.now() - killed;
    expect(killedMs).toBeLessThan(HOLD_S * 1000);
    console.log(`bgp: route withdrawn ${Math.round(killedMs)} ms after node1's BIRD was killed`);
    const after = JSON.parse((await lab(['status', name, '--json'])).stdout) as LabStatus[];
    expect(after[0]!.daemons.find((d) => d.host === 'node1')!.running).toBe(false);
    expect(after[0]!.daemons.find((d) => d.host === 'router')!.sessions.find((s) => s.peer === 'node1')!.info).not.toMatch(/^Established/);
    const text = (await lab(['status', name])).stdout;
    expect(text).toMatch(/BGP router ↔ node2 +Established/);
    expect((await lab(['down', name])).exitCode).toBe(0);
    expect(await birdsOf(name)).toEqual([]);
  });

  describe('a BIRD that fails fails up (exit 4) with its log, and nothing is left', () => {
    const shims = mkdtempSync(join(tmpdir(), 'lab-bird-shim-'));
    afterAll(() => rmSync(shims, { recursive: true, force: true }));
    /** A `bird` first on PATH that changes one host's configuration, then runs the real BIRD on it. */
    const shim = (host: string, sedScript: string) => {
      const dir = mkdtempSync(join(shims, `${host}-`));
      const file = join(dir, 'bird');
      writeFileSync(
        file,
        ['#!/bin/bash', 'args=("$@")', 'for i in "${!args[@]}"; do', `  if [[ "\${args[$i]}" == */${host}.conf ]]; then sed -e '${sedScript}' "\${args[$i]}" > "\${args[$i]}.changed"; args[$i]="\${args[$i]}.changed"; fi`, 'done', 'exec /usr/sbin/bird "${args[@]}"', ''].join('\n'),
      );
      chmodSync(file, 0o755);
      return { PATH: `${dir}:${process.env.PATH}` };
    };

    it('a configuration BIRD refuses: exit 4, its parse error in the message, rolled back', async () => {
      const name = 'bgp-nostart';
      names.push(name);
      const r = await lab(bgp(name), { env: shim('node1', '$a protocol nonsense {') });
      expect(r.exitCode, r.stderr).toBe(4);
      expect(r.stderr).toMatch(/bird in bgp-nostart-node1: exited/);
      expect(r.stderr).toMatch(/node1\.conf\.changed:\d+:\d+ syntax error/);
      expect((await namespaces()).filter((n) => n.startsWith(`${name}-`))).toEqual([]);
      expect(await birdsOf(name)).toEqual([]);
      expect(existsSync(join(STATE, name))).toBe(false);
    });

    it('a session that never reaches Established (wrong peer AS): exit 4 naming it, with the log, rolled back', async () => {
      const name = 'bgp-nopeer';
      names.push(name);
      const r = await lab(bgp(name), { env: { ...shim('node2', 's/as 64512;/as 65000;/'), LAB_DAEMONS_READY_MS: '4000' } });
      expect(r.exitCode, r.stderr).toBe(4);
      expect(r.stderr).toMatch(/not ready within 4 s/);
      expect(r.stderr).toMatch(/session bgp_node2 is /);
      expect(r.stderr).toMatch(/Bad peer AS/i);
      expect((await namespaces()).filter((n) => n.startsWith(`${name}-`))).toEqual([]);
      expect(await birdsOf(name)).toEqual([]);
    });
  });

  describe('a stop signal or SIGKILL at any point of up leaves no BIRD that lab down misses', () => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
      it(`${signal} while the BIRDs start`, async () => {
        const name = `bgp-${signal.toLowerCase()}`;
        names.push(name);
        const child = startLab(bgp(name));
        // The moment the first BIRD is recorded: the router's is up, the nodes' are not yet.
        expect(await until(async () => (stateOf(name)?.daemons?.length ?? 0) > 0, 20_000, 2)).toBe(true);
        child.kill(signal);
        const r = await child;
        if (signal === 'SIGKILL') {
          expect(r.signal).toBe('SIGKILL');
          expect((await lab(['down', name])).exitCode).toBe(0);
        } else {
          expect(r.exitCode, String(r.stderr)).toBe(signal === 'SIGINT' ? 130 : 143);
        }
        expect((await namespaces()).filter((n) => n.startsWith(`${name}-`))).toEqual([]);
        expect(await birdsOf(name)).toEqual([]);
      });
    }

    it('SIGKILL right after every BIRD is ready', async () => {
      const name = 'bgp-crash';
      names.push(name);
      const r = await lab(bgp(name), { env: { LAB_CRASH_AFTER: 'pod network daemons' } });
      expect(r.exitCode).not.toBe(0);
      expect(await birdsOf(name)).toHaveLength(3);
      expect((await lab(['down', name])).exitCode).toBe(0);
      expect((await namespaces()).filter((n) => n.startsWith(`${name}-`))).toEqual([]);
      expect(await birdsOf(name)).toEqual([]);
    });
  });
});

/** Poll `ok` every `everyMs` until it holds or `withinMs` passes. */
async function until(ok: () => Promise<boolean>, withinMs: number, everyMs = 20): Promise<boolean> {
  const deadline = performance.now() + withinMs;
  while (performance.now() < deadline) {
    if (await ok()) return true;
    await sleep(everyMs);
  }
  return ok();
}
