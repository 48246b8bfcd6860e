import { watchPage } from '../browser-watch.js';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '../../lab/api/graph.js';
import { graphDot, graphMermaid, topologyGraph } from '../../lab/picture/graph.js';
import { pathHops } from '../../lab/picture/hops.js';
import { topologySvg } from '../../lab/picture/svg.js';
import { loadTopology } from '../../lab/topology/load.js';
import { reportHtml, summarise } from '../../lab/verify/engine.js';
import { loadEvidence, type Evidence } from '../../lab/verify/evidence.js';
import { loadWalkthrough } from '../../lab/verify/walkthrough.js';

/**
 * The pictures: the topology graph and its three drawings, the hops of a path, report.html
 * (checked as text, then opened in a real browser: Debian's chromium through puppeteer-core).
 */

const RUNS = join(import.meta.dirname, '..', 'fixtures', 'runs');
const CHROMIUM = '/usr/bin/chromium';

function run(name: string, scenario: string) {
  const { topology, path } = loadTopology(scenario);
  const { walkthrough } = loadWalkthrough(topology, path);
  const evidence = loadEvidence(join(RUNS, name));
  return { topology, walkthrough, evidence, result: summarise(topology, walkthrough, '/tmp/run', evidence, 7) };
}

describe('topology graph', () => {
  const { topology } = loadTopology('loadbalancer');
  const g = topologyGraph(topology);
  it('has every namespace, each plugged into its bridge by a veth pair, and the Service', () => {
    expect(g.hosts.map((h) => h.name).sort()).toEqual(['client', 'node1', 'node2', 'router', 'web-1', 'web-2']);
    expect(g.links).toContainEqual({ host: 'web-2', ifname: 'eth0', peerHost: 'node2', bridge: 'cbr0', peer: 'veth-web-2' });
    expect(g.links).toContainEqual({ host: 'client', ifname: 'eth0', peerHost: 'router', bridge: 'br-clients', peer: 'p-client' });
    expect(g.hosts.find((h) => h.name === 'node1')!.bridges).toEqual([{ name: 'cbr0', address: '10.244.0.1/24' }]);
    expect(g.services[0]!.lines).toEqual(['ClusterIP 172.31.0.5', 'TCP 443 → 8443, NodePort 32000', 'LB 10.240.0.100', 'endpoints: web-1 10.244.0.3:8443, web-2 10.244.1.2:8443']);
  });
  it('draws one SVG group per host, bridges and veth links', () => {
    const svg = topologySvg(g);
    for (const h of g.hosts) expect(svg).toContain(`data-host="${h.name}"`);
    expect(svg.match(/class="bridge"/g)).toHaveLength(4);
    expect(svg.match(/class="link"/g)).toHaveLength(g.links.length);
    expect(svg).toContain('LB 10.240.0.100');
  });
  it('writes Mermaid and DOT', () => {
    expect(graphMermaid(g)).toMatch(/^flowchart TB\n/);
    expect(graphMermaid(g)).toContain('web_2 ---|"eth0 ↔ veth-web-2 (cbr0)"| node2');
    expect(graphDot(g)).toMatch(/^graph "loadbalancer" \{/);
    expect(graphDot(g)).toContain('"node1" -- "router"');
  });
  it('lab graph reads a scenario without a running lab', () => {
    expect(graph('nodeport', 'svg')).toMatch(/^<svg [^>]*><style>/);
    expect(() => graph('nodeport', 'png' as never)).toThrow(/--format png/);
  });
});

describe('path hops', () => {
  it('follows the cross-node request and reply through every capture, NAT marked where it happened', () => {
    const { evidence } = run('nodeport', 'nodeport');
    const flow = evidence.flows.find((f) => f.answer?.pod === 'web-2')!;
    const { request, reply } = pathHops(flow, evidence.packets);
    // The router's bridge sees it twice: on its way to node1, and (translated) on its way to node2.
    expect(request.map((h) => h.point)).toEqual(['client:eth0', 'router:br-nodes', 'node1:eth0', 'node1:eth0', 'router:br-nodes', 'node2:eth0', 'node2:cbr0', 'web-2:eth0']);
    expect(request.map((h) => h.changed.join(','))).toEqual(['', '', '', 'src,dst', '', '', '', '']);
    expect(reply.at(-1)).toMatchObject({ point: 'client:eth0', src: '10.240.0.4:32000', dst: flow.client });
    expect(reply.map((h) => h.changed.join(',')).filter(Boolean)).toEqual(['src,dst']);
  });
});

describe('report.html', () => {
  const { topology, evidence, result } = run('nodeport', 'nodeport');
  const html = reportHtml(topology, result, evidence, 'now');
  it('is one self-contained file: inline script only, nothing fetched', () => {
    expect(html).not.toMatch(/<script [^>]*src=|<link |src="http|href="http|@import|url\(|fetch\(|XMLHttpRequest/i);
    expect(html.match(/<script/g)).toHaveLength(2); // the player's data and the player
    expect(html.match(/https?:\/\/[^"]+/g)).toEqual(['http://www.w3.org/2000/svg']);
  });
  it('holds the topology, each path with its steps and notes, and links to the pcaps', () => {
    for (const p of result.paths) expect(html).toContain(`data-path="${p.name}"`);
    expect(html.match(/<tr class="step /g)).toHaveLength(result.paths.flatMap((p) => p.steps).length);
    expect(html).toContain('href="node1-eth0.pcap"');
    expect(html).toContain('The kernel does one: a single DNAT');
  });
  it('is written in well under 100 ms', () => {
    const t0 = performance.now();
    reportHtml(topology, result, evidence, 'now');
    expect(performance.now() - t0).toBeLessThan(100);
  });
});

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`the browser test needs ${CHROMIUM} (apt-get install chromium)`);

describe.skipIf(!haveChromium)('report.html in a real browser', () => {
  let browser: Browser;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lab-report-'));
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      userDataDir: join(dir, 'profile'),
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function open(file: string) {
    const page = await browser.newPage();
    const { problems, fetched } = await watchPage(page);
    await page.setViewport({ width: 1300, height: 900 });
    await page.goto(`file://${file}`, { waitUntil: 'load' });
    return { page, problems, fetched };
  }

  for (const [name, scenario] of [['nodeport', 'nodeport'], ['loadbalancer', 'loadbalancer']] as const) {
    it(`${name}: renders without a console error, an SVG element per host, each step's result shown`, async () => {
      const r = run(name, scenario);
      const file = join(dir, `${name}.html`);
      writeFileSync(file, reportHtml(r.topology, r.result, r.evidence, 'now'));
      const { page, problems, fetched } = await open(file);
      expect(problems).toEqual([]);
      expect(fetched).toEqual([`file://${file}`]);
      const hosts = await page.$$eval('svg.topology g.host', (gs) => gs.map((g) => g.getAttribute('data-host')));
      expect(hosts.sort()).toEqual([...r.topology.nodes, ...r.topology.clients, ...r.topology.pods, ...r.topology.routers].map((h) => h.name).sort());
      // Every host box is drawn with a real size on the page.
      const sizes = await page.$$eval('svg.topology g.host rect.ns', (rs) => rs.map((x) => x.getBoundingClientRect().width));
      expect(sizes.every((w) => w > 50)).toBe(true);
      const shown = await page.$$eval('tr.step', (rows) => rows.map((tr) => (tr.querySelector('td.result') as HTMLElement).innerText.trim()));
      expect(shown).toEqual(r.result.paths.flatMap((p) => p.steps.map((s) => (s.status === 'pass' ? 'pass' : s.status === 'fail' ? 'FAIL' : 'n/a'))));
      await page.screenshot({ path: join(tmpdir(), `lab-report-${name}.png`), fullPage: true });
      await page.close();
    }, 60_000);
  }

  it('shows a failed step as failed', async () => {
    const r = run('nodeport', 'nodeport');
    const broken: Evidence = { ...r.evidence, routes: { node1: { '10.244.1.2': 'cbr0' } } };
    const result = summarise(r.topology, r.walkthrough, '/tmp/run', broken, 1);
    const file = join(dir, 'failed.html');
    writeFileSync(file, reportHtml(r.topology, result, broken, 'now'));
    const { page, problems } = await open(file);
    expect(problems).toEqual([]);
    expect(await page.$$eval('tr.step.fail td.result', (tds) => tds.map((td) => (td as HTMLElement).innerText))).toEqual(['FAIL']);
    expect(await page.$eval('.summary', (e) => (e as HTMLElement).innerText)).toMatch(/20 passed, 1 failed/);
    await page.close();
  }, 60_000);
});
