import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TraceResult } from '../../lab/api/trace.js';
import { lab, requireRoot, sh, startLab } from './helpers.js';

const root = requireRoot();
const LAB = 'tr';
const UNREADY = 'tr-unready';
const DNS = 'tr-dns';

/** Nothing of a trace may stay: no table of its own, no raw table it made, no monitor. */
async function expectNoTraceLeft(l: string): Promise<void> {
  for (const host of ['node1', 'node2', 'router']) {
    const tables = await sh('ip', ['netns', 'exec', `${l}-${host}`, 'nft', 'list', 'tables']);
    expect(tables, host).not.toMatch(/lab-trace|table ip raw/);
  }
  // Zombies do not count: under the test's pid namespace, vitest is pid 1 and reaps no orphans.
  const alive = (await sh('ps', ['-eo', 'stat=,args='])).split('\n').filter((l) => !l.trim().startsWith('Z') && /xtables-monitor|nft monitor/.test(l));
  expect(alive).toEqual([]);
}

const trace = async (l: string, args: string[] = []) => {
  const r = await lab(['trace', l, '--json', ...args]);
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as TraceResult;
};

describe.skipIf(!root)('lab trace against the real kernel', () => {
  beforeAll(async () => {
    expect((await lab(['up', 'nodeport', '--name', LAB])).exitCode).toBe(0);
  });
  afterAll(async () => {
    await lab(['down', LAB]);
    await lab(['down', UNREADY]);
    await lab(['down', DNS]);
  });

  it("shows kube-proxy's chains in order on node1, the DNAT, and conntrack translating the reply", async () => {
    const r = await trace(LAB);
    expect(r.mode).toBe('iptables');
    expect(r.flow.answer).toBeDefined();
    const node1 = r.hops.find((h) => h.host === 'node1' && h.direction === 'request')!;
    const chains = node1.hooks.flatMap((h) => h.rules.map((x) => x.chain));
    for (const c of ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-MARK-MASQ', 'KUBE-POSTROUTING']) expect(chains).toContain(c);
    expect(chains.some((c) => c.startsWith('KUBE-SEP-'))).toBe(true);
    const dnat = node1.hooks.flatMap((h) => h.rules).find((x) => x.rule.includes('DNAT'))!;
    expect(dnat.nat).toBe(`now ${r.flow.client} > ${r.flow.answer!.podIP}:8443`);
    const back = r.hops.find((h) => h.host === 'node1' && h.direction === 'reply')!;
    expect(back.notes.join(' ')).toContain(`it leaves as 10.240.0.4:32000 > ${r.flow.client}`);
    await expectNoTraceLeft(LAB);
  });

  // Five rounds: two traces at once used to fail about 1 round in 8 (one's cleanup deleted the
  // other's rules, or made its monitor exit); traces of one lab now take turns.
  it('two traces started at once on one lab both succeed, each with its own connection', async () => {
    for (let round = 0; round < 5; round++) await twoTracesAtOnce();
  });
  async function twoTracesAtOnce(): Promise<void> {
    const [a, b] = await Promise.all([trace(LAB), trace(LAB)]);
    expect(a.flow.client).not.toBe(b.flow.client);
    for (const r of [a, b]) {
      const port = r.flow.client.split(':')[1];
      const first = r.hops.find((h) => h.host === 'node1' && h.direction === 'request')!;
      expect(first.packet).toContain(`:${port} > 10.240.0.4:32000`);
    }
    await expectNoTraceLeft(LAB);
  }

  it('removes its rules and monitors when interrupted (SIGINT, SIGTERM)', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const child = startLab(['trace', LAB], { env: { LAB_LOG_LEVEL: 'debug' } });
      // Interrupt once the monitors are up and the rules are in place.
      await new Promise<void>((resolve) => {
        child.stderr!.on('data', (d: Buffer) => {
          if (d.toString().includes('iptables-restore --noflush')) resolve();
        });
      });
      child.kill(signal);
      const r = await child;
      expect(r.exitCode, signal).not.toBe(0);
      await expectNoTraceLeft(LAB);
    }
  });

  it('shows the DROP on a node without a ready local endpoint', async () => {
    const up = await lab(['up', 'nodeport-local', '--name', UNREADY, '--set', 'pods.web-2.ready=false', '--set', 'walkthrough=nodeport-local-unready.walkthrough.yaml']);
    expect(up.exitCode, up.stderr).toBe(0);
    const r = await trace(UNREADY, ['--to', '10.240.0.5:32000']);
    expect(r.flow.answer).toBeUndefined();
    const node2 = r.hops.find((h) => h.host === 'node2')!;
    expect(node2.fate).toBe('DROP');
    expect(node2.hooks.flatMap((h) => h.rules).find((x) => x.verdict === 'DROP')?.comment).toBe('default/web:https has no local endpoints');
    const text = await lab(['trace', UNREADY, '--to', '10.240.0.5:32000']);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toContain('DROP: the packet ends here');
    await expectNoTraceLeft(UNREADY);
  });

  it('traces a UDP DNS query through kube-dns\'s ClusterIP (--proto udp)', async () => {
    const up = await lab(['up', 'clusterip', '--name', DNS]);
    expect(up.exitCode, up.stderr).toBe(0);
    const r = await trace(DNS, ['--from', 'frontend', '--to', '172.31.0.10:53', '--proto', 'udp']);
    expect(r.flow.datagram?.reply).toMatch(/from 172\.31\.0\.10:53 \(DNS answer/);
    const node1 = r.hops.find((h) => h.host === 'node1' && h.direction === 'request')!;
    const dnat = node1.hooks.flatMap((h) => h.rules).find((x) => x.rule.includes('DNAT'))!;
    expect(dnat.comment).toBe('kube-system/kube-dns:dns');
    expect(dnat.nat).toMatch(/> 10\.244\.1\.10:53$/);
    expect(r.hops.some((h) => h.direction === 'reply')).toBe(true);
    await expectNoTraceLeft(DNS);
    await lab(['down', DNS]);
  });

  it('refuses bad input before touching anything', async () => {
    expect((await lab(['trace', LAB, '--from', 'nobody'])).exitCode).toBe(2);
    expect((await lab(['trace', LAB, '--to', 'nowhere'])).exitCode).toBe(2);
    // An IPv6 destination from a client with no IPv6 address, in a lab with no IPv6 pod range.
    const v6 = await lab(['trace', LAB, '--to', '[fd00:10:240::4]:32000']);
    expect(v6.exitCode).toBe(2);
    expect(v6.stderr).toContain('an IPv6 destination needs an IPv6 address on client (address6)');
    expect((await lab(['trace', 'not-up'])).exitCode).toBe(5);
  });
});
