import { watchPage } from '../browser-watch.js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTopology } from '../../lab/topology/load.js';
import { reportHtml, summarise } from '../../lab/verify/engine.js';
import { loadEvidence } from '../../lab/verify/evidence.js';
import { loadWalkthrough } from '../../lab/verify/walkthrough.js';

/**
 * The player of every scenario's report.html, in both proxy modes, stepped through hop by hop in
 * Debian's chromium: the reports come from recorded verify runs (test/fixtures/runs/player, one
 * per scenario and mode), one browser opens them all. LAB_DOC_SCREENSHOT=1 also rewrites the
 * screenshot in docs/seeing-the-walk.md.
 */

const RUNS = join(import.meta.dirname, '..', 'fixtures', 'runs', 'player');
const CHROMIUM = '/usr/bin/chromium';
const DOC_SHOT = join(import.meta.dirname, '..', '..', 'docs', 'player.png');
const runs = readdirSync(RUNS).sort();

function report(run: string): string {
  const [, scenario = '', mode = ''] = /^(.+)-(iptables|nftables)$/.exec(run) ?? [];
  const { topology, path } = loadTopology(scenario, { 'kubeProxy.mode': mode });
  const { walkthrough } = loadWalkthrough(topology, path);
  const evidence = loadEvidence(join(RUNS, run));
  return reportHtml(topology, summarise(topology, walkthrough, '/tmp/run', evidence, 1), evidence, 'now');
}

/** What the drawing shows now: the marker's place and label, and which elements are lit how. */
const drawing = (page: Page) =>
  page.$eval('svg.topology', (svg) => {
    const m = svg.querySelector('#hop-marker')!;
    const lit = [...svg.querySelectorAll('.here, .visited')].map((e) => `${e.getAttribute('class')}:${e.getAttribute('data-link') ?? e.getAttribute('data-host') ?? e.getAttribute('data-overlay')}`);
    return `${m.getAttribute('cx')},${m.getAttribute('cy')} ${svg.querySelector('#hop-label')?.textContent} ${lit.sort().join(' ')}`;
  });

describe.skipIf(!existsSync(CHROMIUM))('the player, stepped through in a real browser', () => {
  let browser: Browser;
  let dir: string;
  let blank = 0;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lab-player-'));
    browser = await puppeteer.launch({ executablePath: CHROMIUM, userDataDir: join(dir, 'profile'), args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    const page = await browser.newPage();
    await page.setContent('<body style="background:#fff"></body>');
    blank = (await page.screenshot({ clip: { x: 0, y: 0, width: 160, height: 160 } })).length;
    await page.close();
  }, 60_000);
  /** A recorded run's report.html, opened in a new page of the shared browser. */
  const openReport = async (run: string, suffix: string): Promise<Page> => {
    const file = join(dir, `${run}-${suffix}.html`);
    writeFileSync(file, report(run));
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(`file://${file}`, { waitUntil: 'load' });
    return page;
  };
  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('has a recorded run of every scenario in both proxy modes', () => {
    const scenarios = readdirSync(join(import.meta.dirname, '..', '..', 'topologies')).filter((f) => /^[a-z-]+\.yaml$/.test(f) && !f.includes('.walkthrough') && !f.includes('.workshop')).map((f) => f.replace('.yaml', ''));
    expect(runs.sort()).toEqual(scenarios.flatMap((s) => [`${s}-iptables`, `${s}-nftables`]).sort());
  });

  for (const run of runs) {
    it(`${run}: every hop of every path, by key, lit on the drawing, nothing fetched`, async () => {
      const html = report(run);
      const file = join(dir, `${run}.html`);
      writeFileSync(file, html);
      const page = await browser.newPage();
      const { problems, fetched } = await watchPage(page, `file://${file}`);
      await page.setViewport({ width: 1280, height: 900 });
      await page.goto(`file://${file}`, { waitUntil: 'load' });
      const total = await page.$$eval('li.hop-card', (cards) => cards.length);
      expect(total).toBeGreaterThan(0);
      const seen = new Set<string>();
      let before = '';
      for (let k = 0; k < total; k++) {
        if (k > 0) await page.keyboard.press('ArrowRight');
        const current = await page.$$eval('[aria-current="step"]', (es) => es.map((e) => e.id));
        expect(current).toHaveLength(1);
        expect(seen.has(current[0]!), `${current[0]} twice`).toBe(false);
        seen.add(current[0]!);
        const now = await drawing(page);
        expect(now, `the drawing did not change at ${current[0]}`).not.toBe(before);
        before = now;
        const [cx = 0, cy = 0] = await page.$eval('#hop-marker', (m) => {
          const r = m.getBoundingClientRect();
          return [r.x + window.scrollX + r.width / 2, r.y + window.scrollY + r.height / 2];
        });
        const shot = await page.screenshot({ clip: { x: Math.max(0, cx - 80), y: Math.max(0, cy - 80), width: 160, height: 160 } });
        expect(shot.length, `blank screenshot at ${current[0]}`).toBeGreaterThan(blank * 1.5);
      }
      expect(seen.size).toBe(total);
      expect(problems).toEqual([]);
      expect(fetched).toEqual([]);
      if (run === 'nodeport-iptables' && process.env.LAB_DOC_SCREENSHOT) await docShot(page);
      await page.close();
    }, 120_000);
  }

  it('nodeport in vxlan mode (a saved run, test/fixtures/runs/nodeport-vxlan): the cross-node hops light the tunnel, every hop steps', async () => {
    const { topology, path } = loadTopology('nodeport', { 'podNetwork.mode': 'vxlan' });
    const { walkthrough } = loadWalkthrough(topology, path);
    const evidence = loadEvidence(join(RUNS, '..', 'nodeport-vxlan'));
    const file = join(dir, 'nodeport-vxlan.html');
    writeFileSync(file, reportHtml(topology, summarise(topology, walkthrough, '/tmp/run', evidence, 1), evidence, 'now'));
    const page = await browser.newPage();
    const { problems, fetched } = await watchPage(page, `file://${file}`);
    await page.goto(`file://${file}`, { waitUntil: 'load' });
    const total = await page.$$eval('li.hop-card', (cards) => cards.length);
    const tunnel: string[] = [];
    const steps = new Set<string>();
    for (let k = 0; k < total; k++) {
      if (k > 0) await page.keyboard.press('ArrowRight');
      steps.add(await page.$eval('[aria-current="step"]', (e) => e.id));
      const lit = await page.$$eval('svg.topology g.overlay.here', (es) => es.map((e) => e.getAttribute('data-overlay')));
      if (lit.length) tunnel.push(await page.$eval('[aria-current="step"]', (e) => e.id));
    }
    expect(steps.size).toBe(total);
    // node1 sends it into the tunnel, the router forwards the datagram, node2 takes it out: each way.
    expect(tunnel.length).toBeGreaterThanOrEqual(6);
    expect(await page.$eval('#panel', (e) => e.textContent)).toBeTruthy();
    expect(problems).toEqual([]);
    expect(fetched).toEqual([]);
    await page.close();
  }, 120_000);

  for (const run of ['dualstack-iptables', 'dualstack-nftables']) {
    it(`${run}: the IPv6 path steps hop by hop at [ip]:port, lit where IPv4's is, node1's hop shows the ip6 rules that translated it`, async () => {
      const page = await openReport(run, 'ipv6');
      const tabs = await page.$$eval('.path-tab', (es) => es.map((e) => e.textContent));
      const hopsOf = async (name: string) => {
        const index = tabs.indexOf(name);
        await page.click(`.path-tab[data-path-index="${index}"]`);
        const total = await page.$$eval(`li.hop-card[id^="hop-${index}-"]`, (cards) => cards.length);
        const out: { hdr: string; lit: string; panel: string }[] = [];
        for (let k = 0; k < total; k++) {
          if (k > 0) await page.keyboard.press('ArrowRight');
          const hdr = await page.$eval('[aria-current="step"] .hdr', (e) => e.textContent ?? '');
          const lit = await page.$$eval('svg.topology .here', (es) => es.map((e) => e.getAttribute('data-link') ?? e.getAttribute('data-host') ?? '').sort().join(' '));
          out.push({ hdr, lit, panel: await page.$eval('#panel', (e) => e.textContent ?? '') });
        }
        return out;
      };
      const v4 = await hopsOf('cross-node');
      const v6 = await hopsOf('cross-node over IPv6');
      expect(v6.length).toBe(v4.length);
      // The same hops, lit on the same links, only the addresses differ.
      expect(v6.map((h) => h.lit)).toEqual(v4.map((h) => h.lit));
      expect(v6[0]!.hdr).toMatch(/^\[fd00:10:241::4\]:\d+ > \[fd00:10:240::4\]:32000 \[S\]$/);
      const translated = v6.find((h) => /^\[fd00:10:240::4\]:\d+ > \[fd00:10:244:1::2\]:8443 \[S\]$/.test(h.hdr))!;
      expect(translated.panel).toContain('DNAT [fd00:10:240::4]:32000 → [fd00:10:244:1::2]:8443, SNAT (MASQUERADE) [fd00:10:241::4]:');
      expect(translated.panel).toContain(run.endsWith('iptables') ? '-j DNAT --to-destination [fd00:10:244:1::2]:8443' : 'dnat to [fd00:10:244:1::2]:8443');
      expect(translated.panel).toContain(run.endsWith('iptables') ? 'KUBE-SERVICES ! -d ::1/128 -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS' : 'ip6 daddr @nodeport-ips');
      expect(v6.at(-1)!.hdr).toMatch(/^\[fd00:10:240::4\]:32000 > \[fd00:10:241::4\]:\d+ \[S\.\]$/);
      await page.close();
    }, 120_000);
  }

  for (const run of ['lb-source-ranges-iptables', 'lb-source-ranges-nftables']) {
    it(`${run}: the outsider's request is drawn dead where the kernel dropped it, with its reason and rule`, async () => {
      const page = await openReport(run, 'drop');
      const cards = await page.$$eval('li.hop-card.has-drop', (es) => es.map((e) => e.id));
      // The outsider's two requests (two paths), each dropped at node1 by the firewall rule.
      expect(cards.length).toBeGreaterThan(0);
      for (const id of cards) {
        const [, p, i] = id.split('-').map(Number) as [number, number, number];
        await page.click(`.path-tab[data-path-index="${p}"]`);
        for (let k = 0; k < i; k++) await page.keyboard.press('ArrowRight');
        expect(await page.$eval('[aria-current="step"]', (e) => e.id)).toBe(id);
        const panel = await page.$eval('#panel', (e) => e.textContent ?? '');
        expect(panel).toContain('node1');
        expect(panel).toContain('NETFILTER_DROP');
        const rule = await page.$eval('#panel .drop-rule', (e) => e.textContent ?? '');
        expect(rule).toMatch(run.endsWith('iptables') ? /^filter KUBE-PROXY-FIREWALL: -d 10\.240\.0\.100\/32 .*-j DROP$/ : /^firewall-.*: ip saddr != .* drop$/);
        expect(await page.$eval('#hop-marker', (m) => m.classList.contains('dropped'))).toBe(true);
        expect(await page.$eval('#hop-label', (m) => m.textContent)).toContain('✕ NETFILTER_DROP');
        // The hop after it (if any, the next path's first) is not drawn dead.
        await page.keyboard.press('ArrowRight');
        const next = await page.$eval('[aria-current="step"]', (e) => e.id);
        if (next !== id && !cards.includes(next)) expect(await page.$eval('#hop-marker', (m) => m.classList.contains('dropped'))).toBe(false);
      }
      await page.close();
    }, 120_000);
  }
});

/**
 * The screenshot in the docs: the cross-node path at node1's translating hop, the player and the
 * drawing down to the nodes, at a 1000 px wide page; quantized to a 64-colour palette when
 * Debian's pngquant is there (apt-get install pngquant), which takes it from ~170 kB to ~50 kB.
 */
async function docShot(page: Page): Promise<void> {
  await page.setViewport({ width: 1000, height: 900 });
  await page.click('.path-tab[data-path-index="0"]');
  for (let k = 0; k < 3; k++) await page.keyboard.press('ArrowRight');
  await page.evaluate(() => window.scrollTo(0, 0));
  const box = (await (await page.$('main > section'))!.boundingBox())!;
  const nodes = (await (await page.$('svg.topology [data-host="node1"]'))!.boundingBox())!;
  const raw = `${DOC_SHOT}.raw.png`;
  await page.screenshot({ path: raw, clip: { x: box.x, y: box.y, width: box.width, height: Math.min(box.height, nodes.y + nodes.height + 8 - box.y) } });
  const quant = existsSync('/usr/bin/pngquant') ? spawnSync('/usr/bin/pngquant', ['--force', '--strip', '--speed', '1', '--output', DOC_SHOT, '64', raw]) : undefined;
  if (quant?.status === 0) rmSync(raw);
  else renameSync(raw, DOC_SHOT);
}
