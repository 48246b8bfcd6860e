import { watchPage } from '../browser-watch.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClassLab } from '../../lab/api/class.js';
import { lab, requireRoot, startLab } from './helpers.js';

/**
 * The live page (`lab ui`) in Debian's chromium through puppeteer-core, against a real nodeport
 * lab: the token, a request sent from the page and its walk shown from real captures and the
 * kernel's rule trace, the workshop answered on the page; then `lab class status` over two labs.
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
    const token = new URL(url).searchParams.get('token')!;
    const refused = await fetch(`${base}/api/send?token=${token}`, { method: 'POST', body: JSON.stringify({ from: 'client; id', to: '10.240.0.4:32000' }) });
    expect(refused.status).toBe(400);
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
  });

  it('stops cleanly on SIGINT', async () => {
    server.kill('SIGINT');
    const r = await server;
    expect(r.exitCode).toBe(130);
    await expect(fetch(url)).rejects.toThrow();
  });
});
