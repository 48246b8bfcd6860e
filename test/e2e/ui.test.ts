import { watchPage } from '../browser-watch.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClassLab } from '../../lab/api/class.js';
import { stateFile } from '../../lab/state/store.js';
import { lab, requireRoot, startLab } from './helpers.js';

/**
 * The live page (`lab ui`) in Debian's chromium through puppeteer-core, against a real nodeport
 * lab: the token, a request sent from the page and its walk shown from real captures and the
 * kernel's rule trace, the workshop answered on the page, a break-and-fix challenge started,
 * answered and judged on the page (the fix made with lab exec); then `lab class status` over two
 * labs: learners' steps, faults in, challenges.
 */

const root = requireRoot();
const A = 'ui-a';
const B = 'ui-b';
const CHROMIUM = '/usr/bin/chromium';

describe.skipIf(!root)('lab ui and lab class status', () => {
  let dir: string;
  let browser: Browser;
  let server: ReturnType<typeof startLab>;
  let url: string;
  const env = () => ({ LAB_WORKSHOP_DIR: join(dir, 'progress'), NO_COLOR: '1' });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ui-e2e-'));
    for (const l of [A, B]) await lab(['down', l]);
    const ups = await Promise.all([lab(['up', 'nodeport', '--name', A]), lab(['up', 'clusterip', '--name', B])]);
    for (const u of ups) expect(u.exitCode, u.stderr).toBe(0);
    server = startLab(['ui', A], { env: env() });
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      void server.then((r) => reject(new Error(`lab ui exited ${r.exitCode}: ${String(r.stderr)}`)));
    });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      userDataDir: join(dir, 'profile'),
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    if (server && server.exitCode === null) server.kill('SIGKILL');
    for (const l of [A, B]) await lab(['down', l]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints its URL first, on 127.0.0.1 with a token; every request without the token gets 401', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{20,}$/);
    const base = url.slice(0, url.indexOf('/?'));
    for (const path of ['/', '/events', '/api/lab', '/?token=wrong']) expect((await fetch(`${base}${path}`)).status, path).toBe(401);
    const post = await fetch(`${base}/api/send`, { method: 'POST', body: JSON.stringify({ from: 'client', to: '10.240.0.4:32000' }) });
    expect(post.status).toBe(401);
    for (const path of ['/api/challenge/start', '/api/challenge', '/api/repair']) expect((await fetch(`${base}${path}`, { method: 'POST', body: '{}' })).status, path).toBe(401);
    const token = new URL(url).searchParams.get('token')!;
    const refused = await fetch(`${base}/api/send?token=${token}`, { method: 'POST', body: JSON.stringify({ from: 'client; id', to: '10.240.0.4:32000' }) });
    expect(refused.status).toBe(400);
    // A challenge takes only a fault of the lab's list: no name from the page reaches a command.
    const notAFault = await fetch(`${base}/api/challenge/start?token=${token}`, { method: 'POST', body: JSON.stringify({ fault: 'route-localnet; id' }) });
    expect(notAFault.status).toBe(400);
    expect((await fetch(`${base}/api/challenge?token=${token}`, { method: 'POST', body: JSON.stringify({ line: 'check' }) })).status).toBe(409);
  });

  it('shows the live topology, sends a request from the page and shows its walk hop by hop', async () => {
    const page = await browser.newPage();
    const { problems, fetched } = await watchPage(page);
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction(() => document.getElementById('pods-summary')!.textContent!.includes('2 of 2'), { timeout: 20_000 });
    expect(await page.$$eval('svg.topology [data-host]', (els) => els.map((e) => e.getAttribute('data-host')))).toEqual(expect.arrayContaining(['client', 'node1', 'web-1', 'web-2']));
    await page.select('#from', 'client');
    await page.select('#to', '10.240.0.4:32000');
    await page.click('#send');
    await page.waitForSelector('#walk[data-done="1"]', { timeout: 90_000 });
    const walk = await page.$eval('#walk', (e) => e.textContent!);
    // Captured hops (the DNAT seen on node1's eth0) and the kernel's trace (kube-proxy's chains).
    expect(walk).toContain('client:eth0');
    expect(walk).toMatch(/node1:eth0 request 10\.240\.0\.4:\d+ > 10\.244\.1\.2:8443|node1:cbr0 request 10\.244\.0\.1:\d+ > 10\.244\.0\.3:8443/);
    expect(walk).toContain('KUBE-NODEPORTS');
    expect(await page.$eval('#walk-status', (e) => e.textContent!)).toMatch(/answered by web-[12]/);
    expect(await page.$$eval('#wire li', (els) => els.length)).toBeGreaterThan(0);
    expect(await page.$$eval('svg.topology .on-walk', (els) => els.length)).toBeGreaterThan(2);
    await page.waitForFunction(() => document.getElementById('conntrack')!.textContent!.includes('dport=32000'), { timeout: 10_000 });

    // The workshop, answered on the page: a hint, then skip (the lab reads its own answer).
    await page.waitForSelector('#ws-line:not([disabled])');
    for (const word of ['hint', 'skip']) {
      await page.type('#ws-line', word);
      await page.click('#ws-send');
      await page.waitForFunction((w) => document.getElementById('ws-transcript')!.textContent!.includes(`answer> ${w}`), {}, word);
    }
    await page.waitForSelector('#ws-steps li.skipped', { timeout: 60_000 });
    expect(await page.$eval('#ws-transcript', (e) => e.textContent!)).toContain('Hint 1/');
    expect(problems).toEqual([]);
    expect(fetched.filter((u) => !u.startsWith('http://127.0.0.1:'))).toEqual([]);
    await page.close();
  });

  it('break and fix on the page: a challenge started there, the fault hidden, diagnosed, fixed through lab exec, judged fixed; the repair action', async () => {
    const page = await browser.newPage();
    const { problems } = await watchPage(page);
    await page.goto(url, { waitUntil: 'load' });
    const listed = await page.$$eval('#ch-fault option', (els) => els.map((e) => (e as HTMLOptionElement).value));
    const cli = (JSON.parse((await lab(['break', '--list', A, '--json'])).stdout) as { name: string }[]).map((f) => f.name);
    expect(listed).toEqual(['random', ...cli]);
    expect(cli).toContain('route-localnet');
    const transcript = () => page.$eval('#ch-transcript', (e) => e.textContent!);
    const waitText = (text: string) => page.waitForFunction((t) => document.getElementById('ch-transcript')!.textContent!.includes(t), { timeout: 60_000 }, text);
    const waitPrompt = (p: string) => page.waitForFunction((t) => document.getElementById('ch-prompt')!.textContent === t, { timeout: 60_000 }, p);
    /** Type a line at the prompt; then the transcript shows `then`, or the next prompt is `then`. */
    const answer = async (line: string, then: string) => {
      await page.waitForSelector('#ch-line:not([disabled])');
      await page.type('#ch-line', line);
      await page.click('#ch-send');
      await (then.endsWith('> ') ? waitPrompt(then) : waitText(then));
    };

    await page.select('#ch-fault', 'route-localnet');
    await page.click('#ch-go');
    await waitPrompt('fault> ');
    // Put in, and hidden: the page counts it and does not name it.
    await page.waitForFunction(() => document.getElementById('faults-in')!.textContent!.includes('1 hidden'), { timeout: 10_000 });
    expect(await page.$eval('#faults-in', (e) => e.textContent!)).not.toContain('route-localnet');
    expect(await page.$eval('#ch-status', (e) => e.textContent!)).toContain('the fault hidden');
    const state = JSON.parse(readFileSync(stateFile(A), 'utf8')) as { faults?: { fault: string }[] };
    expect(state.faults?.map((f) => f.fault)).toEqual(['route-localnet']);

    await answer('service-chain-emptied', 'not that one: service-chain-emptied');
    await answer('localhost nodeport, route_localnet', 'host> ');
    await answer('node1', 'fix> ');
    await page.waitForSelector('#ch-check:not([disabled])');
    await page.click('#ch-check');
    await waitText('still broken');
    const fix = await lab(['exec', A, 'node1', '--', 'sysctl', '-w', 'net.ipv4.conf.all.route_localnet=1']);
    expect(fix.exitCode, fix.stderr).toBe(0);
    await page.click('#ch-check');
    await waitText('fixed: the live kernel of node1');
    await page.waitForFunction(() => document.getElementById('ch-status')!.dataset.outcome === 'fixed', { timeout: 10_000 });
    expect(await page.$eval('#ch-status', (e) => e.textContent!)).toMatch(/solved: route-localnet on node1, 3 attempts, 1 fix checks/);
    await page.waitForFunction(() => document.getElementById('faults-in')!.textContent === 'none', { timeout: 10_000 });
    expect(await transcript()).toContain('fault> service-chain-emptied');

    // The instructor's repair: a fault put in from a terminal shows by name, and the page undoes it.
    expect((await lab(['break', A, 'service-chain-emptied'])).exitCode).toBe(0);
    await page.waitForFunction(() => document.getElementById('faults-in')!.textContent!.includes('service-chain-emptied'), { timeout: 10_000 });
    await page.waitForSelector('#repair:not([disabled])');
    await page.click('#repair');
    await waitText('repaired: service-chain-emptied');
    await page.waitForFunction(() => document.getElementById('faults-in')!.textContent === 'none', { timeout: 10_000 });
    expect((JSON.parse(readFileSync(stateFile(A), 'utf8')) as { faults?: unknown[] }).faults).toBeUndefined();
    const v = await lab(['verify', A], { timeout: 280_000 });
    expect(v.exitCode, v.stdout).toBe(0);
    expect(problems).toEqual([]);
    await page.close();
  }, 600_000);

  it('lab class status --json: both labs, healthy, each learner\'s step, attempts and hints', async () => {
    const piped = await lab(['workshop', B], { input: 'hint\nskip\nquit\n', env: env(), timeout: 110_000 });
    expect(piped.exitCode, piped.stderr).toBe(0);
    const r = await lab(['class', 'status', '--json'], { env: env() });
    expect(r.exitCode, r.stderr).toBe(0);
    const labs = (JSON.parse(r.stdout) as { labs: ClassLab[] }).labs.filter((l) => l.lab === A || l.lab === B);
    expect(labs.map((l) => [l.lab, l.scenario, l.healthy]).sort()).toEqual([[A, 'nodeport', true], [B, 'clusterip', true]]);
    for (const l of labs) expect(l.workshop).toMatchObject({ step: 2, done: 1, skipped: 1, hints: 1, attempts: 0 });
    const human = await lab(['class', 'status'], { env: env() });
    expect(human.stdout).toMatch(new RegExp(`${A}\\s+nodeport\\s+ok\\s+0\\s+1\\s+step 2/`));
    // A's challenge, solved on the page.
    expect(labs.find((l) => l.lab === A)).toMatchObject({ faults: [], challenge: { fault: 'route-localnet', host: 'node1', outcome: 'fixed', solved: true, hidden: false, attempts: 3, fixChecks: 1 } });
    expect(human.stdout).toMatch(/challenge solved: route-localnet on node1, found; 3 attempts, 1 fix checks/);
  });

  it('lab class status: the faults in a lab and its challenge while it runs (hidden), then given up', async () => {
    const p = startLab(['workshop', B, '--challenge', 'bridge-nf-call-iptables'], { env: env() });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 600 && !out.includes('fault> '); i++) await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain('fault> ');
    p.stdin!.write('stale-dns-conntrack\n'); // wrong: one attempt
    for (let i = 0; i < 100 && !out.includes('not that one'); i++) await new Promise((r) => setTimeout(r, 100));
    const during = await lab(['class', 'status', '--json'], { env: env() });
    const b = (JSON.parse(during.stdout) as { labs: ClassLab[] }).labs.find((l) => l.lab === B)!;
    expect(b).toMatchObject({ faults: ['bridge-nf-call-iptables'], challenge: { fault: 'bridge-nf-call-iptables', host: 'node1', outcome: 'in-progress', hidden: true, solved: false, attempts: 1 } });
    const text = await lab(['class', 'status'], { env: env() });
    expect(text.stdout).toContain('faults in: bridge-nf-call-iptables');
    expect(text.stdout).toMatch(/challenge on: bridge-nf-call-iptables on node1, still hidden; 1 attempts/);
    p.stdin!.write('skip\n');
    p.stdin!.end();
    expect((await p).exitCode, out).toBe(0);
    const after = (JSON.parse((await lab(['class', 'status', '--json'], { env: env() })).stdout) as { labs: ClassLab[] }).labs.find((l) => l.lab === B)!;
    expect(after).toMatchObject({ faults: [], challenge: { outcome: 'gave-up', hidden: false, solved: false, attempts: 1 } });
  }, 120_000);

  it('stops cleanly on SIGINT', async () => {
    server.kill('SIGINT');
    const r = await server;
    expect(r.exitCode).toBe(130);
    await expect(fetch(url)).rejects.toThrow();
  });
});
