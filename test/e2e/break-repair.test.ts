import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab, namespaces, requireRoot, startLab } from './helpers.js';
import type { HealthReport } from '../../lab/workshop/health.js';
import type { ChallengeRecord } from '../../lab/workshop/challenge.js';
import { stateFile } from '../../lab/state/store.js';

/**
 * lab break / lab repair on live labs: each fault breaks what it says (verify exit 1 with the
 * failing step in plain words, --check names the symptom), lab repair undoes it (verify passes
 * again); faults that do not apply are refused (exit 2) saying why; the challenge through stdin;
 * a break killed by SIGKILL is still undone by lab repair. One `up` per lab, repaired between faults.
 */
const root = requireRoot();
const env = { NO_COLOR: '1', COLUMNS: '200' };

/** break → verify fails saying `seen` → --check fails naming `symptom` → repair → verify passes. */
async function breakAndRepair(name: string, fault: string, seen: RegExp, symptom: RegExp): Promise<void> {
  const b = await lab(['break', name, fault], { env });
  expect(b.exitCode, b.stderr).toBe(0);
  const v = await lab(['verify', name], { env, timeout: 280_000 });
  expect(v.exitCode, v.stdout).toBe(1);
  const failing = v.stdout.split('\n').filter((l) => /\bFAIL\b/.test(l)).join('\n');
  expect(failing, v.stdout).not.toBe('');
  expect(v.stdout).toMatch(seen);
  // No internal placeholder in what verify expected.
  expect(v.stdout).not.toMatch(/\$client|\$snat|\$pod|expected (dnatRule|answer)\b/);
  const c = await lab(['workshop', name, '--check', '--json'], { env, timeout: 60_000 });
  expect(c.exitCode, c.stdout).toBe(1);
  const report = JSON.parse(c.stdout) as HealthReport;
  const failed = report.checks.filter((x) => x.ok === false).map((x) => `${x.name}: ${x.detail}`).join('\n');
  expect(failed).toMatch(symptom);
  const r = await lab(['repair', name], { env });
  expect(r.exitCode, r.stderr).toBe(0);
  expect(r.stdout).toContain(`repaired lab ${name}: ${fault}`);
  const again = await lab(['verify', name], { env, timeout: 280_000 });
  expect(again.exitCode, again.stdout).toBe(0);
}

/** A challenge run through stdin: write a line, wait for the text the session prints next. */
function challengeSession(args: string[], dir: string) {
  const p = startLab(['workshop', ...args], { env: { ...env, LAB_WORKSHOP_DIR: dir } });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const waitFor = async (text: string) => {
    for (let i = 0; i < 600 && !out.includes(text); i++) await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain(text);
  };
  const write = (line: string) => p.stdin!.write(`${line}\n`);
  /** At `fix>`: fix it for real through lab exec, `check`, and the session ends fixed; the record it saved. */
  const fixWith = async (name: string, host: string, argv: string[]): Promise<ChallengeRecord | undefined> => {
    const fix = await lab(['exec', name, host, '--', ...argv]);
    expect(fix.exitCode, fix.stderr).toBe(0);
    write('check');
    await waitFor('fixed: the live kernel');
    p.stdin!.end();
    const done = await p;
    expect(done.exitCode, out).toBe(0);
    return (JSON.parse(readFileSync(join(dir, `${name}.challenges.json`), 'utf8')) as ChallengeRecord[]).at(-1);
  };
  return { waitFor, write, fixWith };
}

async function refused(name: string, fault: string, why: RegExp): Promise<void> {
  const r = await lab(['break', name, fault], { env });
  expect(r.exitCode, r.stdout).toBe(2);
  expect(r.stderr).toMatch(why);
}

describe('lab break --list', () => {
  it('prints an array of objects with a name and a one-line description', async () => {
    const r = await lab(['break', '--list', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const list = JSON.parse(r.stdout) as { name: string; description: string }[];
    expect(list.map((f) => f.name)).toEqual(expect.arrayContaining(['bridge-nf-call-iptables', 'route-localnet', 'pod-route-gone', 'service-chain-emptied', 'mtu-mismatch', 'stale-dns-conntrack', 'rp-filter-strict']));
    for (const f of list) expect(f.description).toMatch(/^[^\n]{20,}$/);
  });
});

describe.skipIf(!root)('break and repair, nodeport, iptables mode', () => {
  const name = 'bf-np';
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bf-e2e-'));
    await lab(['down', name]);
    const up = await lab(['up', 'nodeport', '--name', name]);
    expect(up.exitCode, up.stderr).toBe(0);
  }, 120_000);
  afterAll(async () => {
    await lab(['down', name]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('route-localnet: the localhost NodePort stops answering', () => breakAndRepair(name, 'route-localnet', /127\.0\.0\.1:32000.*0 of 4 requests answered/, /127\.0\.0\.1:32000.*0 of 4 requests answered/), 600_000);
  it("pod-route-gone: the router's route to node2's pods", () => breakAndRepair(name, 'pod-route-gone', /none of \d+ requests took this path: \d+ answered \(web-1 \d+\)/, /10\.240\.0\.4:32000 answers.*\d of 8 answered|10\.244\.1\.0\/24/), 600_000);
  it('service-chain-emptied: KUBE-SVC flushed on node1', () => breakAndRepair(name, 'service-chain-emptied', /0 of 40 requests answered: 40 connection refused/, /KUBE-SVC-\w+.*missing|0 of 8 answered/), 600_000);
  it('refuses the faults that do not apply, saying why', async () => {
    await refused(name, 'rp-filter-strict', /strict rp_filter drops nothing here/);
    await refused(name, 'mtu-mismatch', /podNetwork.mode routed/);
    await refused(name, 'bridge-nf-call-iptables', /no pod of this lab sends traffic to a Service/);
    await refused(name, 'stale-dns-conntrack', /cluster DNS/);
    await refused(name, 'no-such-fault', /no fault named/);
  });
  it('challenge mode through stdin: wrong and right diagnosis, the fix checked against the kernel', async () => {
    const { waitFor, write, fixWith } = challengeSession([name, '--challenge', 'route-localnet'], dir);
    await waitFor('fault> ');
    write('service-chain-emptied'); // wrong
    await waitFor('not that one');
    write('localhost nodeport, route_localnet'); // right, in words
    await waitFor('host> ');
    write('node2');
    await waitFor('not there');
    write('node1');
    await waitFor('fix> ');
    write('check');
    await waitFor('still broken');
    const rec = await fixWith(name, 'node1', ['sysctl', '-w', 'net.ipv4.conf.all.route_localnet=1']);
    expect(rec).toMatchObject({ fault: 'route-localnet', host: 'node1', outcome: 'fixed', attempts: 4, fixChecks: 1 });
    const state = JSON.parse(readFileSync(stateFile(name), 'utf8')) as { faults?: unknown[] };
    expect(state.faults).toBeUndefined();
    const v = await lab(['verify', name], { env, timeout: 280_000 });
    expect(v.exitCode, v.stdout).toBe(0);
  }, 600_000);
});

describe.skipIf(!root)('break and repair, nodeport, nftables mode', () => {
  const name = 'bf-nft';
  beforeAll(async () => {
    await lab(['down', name]);
    const up = await lab(['up', 'nodeport', '--name', name, '--set', 'kubeProxy.mode=nftables']);
    expect(up.exitCode, up.stderr).toBe(0);
  }, 120_000);
  afterAll(() => lab(['down', name]));

  it('service-chain-emptied: the service- chain flushed', () => breakAndRepair(name, 'service-chain-emptied', /0 of 40 requests answered/, /chain service-\w+-default\/web\/tcp\/https \(the chain is empty\)/), 600_000);
  it('route-localnet is refused: nftables mode has no localhost NodePorts', () => refused(name, 'route-localnet', /nftables mode does not accept NodePorts on 127\.0\.0\.1/));
});

describe.skipIf(!root)('break and repair, nodeport, vxlan pod network', () => {
  const name = 'bf-vx';
  beforeAll(async () => {
    await lab(['down', name]);
    const up = await lab(['up', 'nodeport', '--name', name, '--set', 'podNetwork.mode=vxlan']);
    expect(up.exitCode, up.stderr).toBe(0);
  }, 120_000);
  afterAll(() => lab(['down', name]));

  it("pod-route-gone: node1's FDB entry for node2's VTEP", () => breakAndRepair(name, 'pod-route-gone', /none of \d+ requests took this path/, /FDB entry|\d of 8 answered/), 600_000);
  it('mtu-mismatch: web-2 at 1500 on the 1450 tunnel', () => breakAndRepair(name, 'mtu-mismatch', /mss 1410[\s\S]*mss 1460/, /MTU set to 1500/), 600_000);
});

describe.skipIf(!root)('break and repair, clusterip (a pod calls the Service, cluster DNS)', () => {
  const name = 'bf-ci';
  beforeAll(async () => {
    await lab(['down', name]);
    const up = await lab(['up', 'clusterip', '--name', name]);
    expect(up.exitCode, up.stderr).toBe(0);
  }, 120_000);
  afterAll(() => lab(['down', name]));

  it('bridge-nf-call-iptables off on node1: the same-node reply bypasses conntrack', () => breakAndRepair(name, 'bridge-nf-call-iptables', /none of \d+ requests took this path/, /172\.31\.0\.5:443 answers.*\d of 8 answered|bridge-nf-call-iptables=0/), 600_000);
  it('stale-dns-conntrack: DNS blackholed by untranslated entries', () => breakAndRepair(name, 'stale-dns-conntrack', /0 of 40 requests answered: 40 timed out/, /untranslated UDP entries/), 600_000);
  it('a break killed by SIGKILL is undone by lab repair', async () => {
    const p = startLab(['break', name, 'stale-dns-conntrack'], { env });
    // Killed as soon as the fault is recorded (before or while its steps run).
    for (let i = 0; i < 600; i++) {
      if (existsSync(stateFile(name)) && readFileSync(stateFile(name), 'utf8').includes('"faults"')) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    p.kill('SIGKILL');
    await p;
    const r = await lab(['repair', name], { env });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('stale-dns-conntrack');
    const v = await lab(['verify', name], { env, timeout: 280_000 });
    expect(v.exitCode, v.stdout).toBe(0);
    const range = await lab(['exec', name, 'frontend', '--', 'sysctl', '-n', 'net.ipv4.ip_local_port_range']);
    expect(range.stdout.trim().split(/\s+/)).not.toEqual(['40000', '40007']);
  }, 600_000);
  it('lab down after a break removes everything', async () => {
    expect((await lab(['break', name, 'bridge-nf-call-iptables'], { env })).exitCode).toBe(0);
    const d = await lab(['down', name]);
    expect(d.exitCode, d.stderr).toBe(0);
    expect((await namespaces()).filter((n) => n.startsWith(`${name}-`))).toEqual([]);
  }, 120_000);
});

/**
 * Strict rp_filter where it bites: nodeport-multihomed's node1 has eth1 on the client network, so
 * a client's SYN to 10.240.0.4:32000 comes in on eth0 and the route back leaves by eth1.
 */
for (const mode of ['iptables', 'nftables'] as const) {
  describe.skipIf(!root)(`break and repair, nodeport-multihomed, ${mode} mode`, () => {
    const name = `bf-mh-${mode.slice(0, 3)}`;
    let dir: string;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'bf-mh-e2e-'));
      await lab(['down', name]);
      const up = await lab(['up', 'nodeport-multihomed', '--name', name, '--set', `kubeProxy.mode=${mode}`]);
      expect(up.exitCode, up.stderr).toBe(0);
    }, 120_000);
    afterAll(async () => {
      await lab(['down', name]);
      rmSync(dir, { recursive: true, force: true });
    });

    it("rp-filter-strict on node1's eth0: every SYN dropped by the reverse-path filter, named by verify", async () => {
      const before = await lab(['exec', name, 'node1', '--', 'nstat', '-az', 'TcpExtIPReversePathFilter']);
      const count = (out: string) => Number(/TcpExtIPReversePathFilter\s+(\d+)/.exec(out)?.[1]);
      await breakAndRepair(name, 'rp-filter-strict', new RegExp('0 of 40 requests answered: 40 timed out; the kernel dropped 40 at node1 eth0: IP_RPFILTER \\(the reverse-path filter refused its source\\)'.replaceAll(' ', '\\s+')), /10\.240\.0\.4:32000 answers: 0 of \d+ answered[\s\S]*rp_filter=1 on node1/);
      // The kernel counted them (verify's 40 and --check's), and loose mode (repair put back 0) counts no more.
      const after = await lab(['exec', name, 'node1', '--', 'nstat', '-az', 'TcpExtIPReversePathFilter']);
      expect(count(after.stdout) - count(before.stdout)).toBeGreaterThanOrEqual(40);
    }, 600_000);

    it('the challenge: named in words, found on node1, fixed with loose rp_filter (2) through lab exec', async () => {
      const { waitFor, write, fixWith } = challengeSession([name, '--challenge', 'rp-filter-strict'], dir);
      await waitFor('fault> ');
      write('strict reverse path filter');
      await waitFor('host> ');
      write('node1');
      await waitFor('fix> ');
      expect(await fixWith(name, 'node1', ['sysctl', '-w', 'net.ipv4.conf.eth0.rp_filter=2'])).toMatchObject({ fault: 'rp-filter-strict', host: 'node1', outcome: 'fixed' });
      const v = await lab(['verify', name], { env, timeout: 280_000 });
      expect(v.exitCode, v.stdout).toBe(0);
    }, 600_000);

    it('an unknown fault is refused, listing rp-filter-strict among the faults that apply here', async () => {
      const r = await lab(['break', name, 'no-such-fault'], { env });
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(/faults that apply to lab bf-mh-\w+: .*rp-filter-strict/);
    });
  });
}
