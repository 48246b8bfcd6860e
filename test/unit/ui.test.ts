import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workshopPlace } from '../../lab/api/class.js';
import { checkedRequest, destinations, senders, type LabView } from '../../lab/api/ui-actions.js';
import { listenLoopback, newToken } from '../../lab/ui/http.js';
import { uiPage } from '../../lab/ui/page.js';
import { capturePoints, labPicture } from '../../lab/ui/picture.js';
import { loadTopology } from '../../lab/topology/load.js';
import { newProgress, recordStep } from '../../lab/workshop/progress.js';
import { pageConversation } from '../../lab/ui/conversation.js';
import { latestChallenge, runChallenge, type ChallengeRecord } from '../../lab/workshop/challenge.js';
import { FAULTS } from '../../lab/break/index.js';
import type { FaultPlan } from '../../lab/break/catalogue.js';

/** The live page's pure parts: what may be sent where, the page itself, the token gate; the class view's arithmetic. */

const { topology } = loadTopology('nodeport');
const view: LabView = { lab: 'nodeport', topology, senders: senders(topology), destinations: destinations(topology, () => [8443]), nodes: ['node1', 'node2'] };

describe('what the page may send', () => {
  it('lists the Service address, the NodePort on every node and each pod', () => {
    expect(view.destinations.map((d) => d.to)).toEqual(['172.31.0.5:443', '10.240.0.4:32000', '10.240.0.5:32000', '10.244.0.3:8443', '10.244.1.2:8443']);
    expect(view.senders).toEqual(['client', 'web-1', 'web-2']);
  });
  it('takes only a sender and a destination of the lab', () => {
    expect(checkedRequest(view, { from: 'client', to: '10.240.0.4:32000' })).toEqual({ from: 'client', to: '10.240.0.4:32000', proto: 'tcp' });
    expect(() => checkedRequest(view, { from: 'client; rm -rf /', to: '10.240.0.4:32000' })).toThrow(/is not a client or pod/);
    expect(() => checkedRequest(view, { from: 'client', to: '10.240.0.4:32000 -o /etc/passwd' })).toThrow(/is not a Service address/);
    expect(() => checkedRequest(view, null)).toThrow();
  });
  it('captures on every eth0 and every bridge', () => {
    expect(capturePoints(topology)).toEqual(expect.arrayContaining(['client:eth0', 'router:br-nodes', 'node1:eth0', 'node1:cbr0', 'web-2:eth0']));
    expect(capturePoints(topology)).not.toContain('router:eth0');
  });
});

describe('the page', () => {
  const html = uiPage({ lab: 'nodeport', token: 'T0K', picture: labPicture(topology), senders: view.senders, destinations: view.destinations, nodes: view.nodes, natNode: 'node1', workshop: true, faults: [{ name: 'route-localnet', description: 'localhost <NodePorts> stop' }] });
  it('is one document that loads nothing: no src, no href, no external URL', () => {
    expect(html).not.toMatch(/\s(src|href)=/);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    expect(html).toContain('data-host="web-1"');
  });
  it('offers the challenges: a random fault or one of the lab\'s, its list escaped, the repair action', () => {
    expect(html).toContain('<option value="random">');
    expect(html).toContain('<option value="route-localnet">');
    expect(html).toContain('localhost &lt;NodePorts&gt; stop');
    expect(html).toContain('id="repair"');
  });
  it('escapes what it embeds', () => {
    const evil = uiPage({ lab: 'x', token: '</script><b>', picture: { svg: '', css: '' }, senders: ['<i>'], destinations: [], nodes: [], natNode: '', workshop: false, faults: [] });
    expect(evil).not.toContain('</script><b>');
    expect(evil).toContain('&lt;i&gt;');
  });
});

describe('the token gate', () => {
  const token = newToken();
  let port = 0;
  let close: () => void;
  beforeAll(async () => {
    const s = await listenLoopback({ 'GET /api/x': () => ({ ok: true }) }, token, 0);
    port = s.port;
    close = () => s.server.close();
  });
  afterAll(() => close());
  const get = (path: string, host = `127.0.0.1:${port}`) =>
    new Promise<number>((resolve, reject) => {
      const r = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      r.on('error', reject);
      r.end();
    });
  it('401 without the right token, 421 for another Host, 404 for an unknown route, 200 otherwise', async () => {
    expect(await get('/api/x')).toBe(401);
    expect(await get(`/api/x?token=${token}x`)).toBe(401);
    expect(await get(`/api/x?token=${token}`, 'evil.example:80')).toBe(421);
    expect(await get(`/nope?token=${token}`)).toBe(404);
    expect(await get(`/api/x?token=${token}`)).toBe(200);
  });
});

describe("the class view's place in a workshop", () => {
  const steps = [{ id: 'a', title: 'A' }, { id: 'b', title: 'B' }, { id: 'c', title: 'C' }];
  it('not started: step 1, nothing counted', () => {
    expect(workshopPlace('W', steps, undefined, 'f')).toMatchObject({ step: 1, total: 3, stepTitle: 'A', done: 0, attempts: 0, hints: 0 });
  });
  it('sums the finished steps and points at the first one not done', () => {
    let p = newProgress('l', 's');
    p = recordStep(p, 'a', { outcome: 'correct', attempts: 3, hints: 2 });
    p = recordStep(p, 'c', { outcome: 'skipped', attempts: 1, hints: 1 });
    p = recordStep(p, 'gone', { outcome: 'correct', attempts: 9, hints: 9 });
    expect(workshopPlace('W', steps, p, 'f')).toMatchObject({ step: 2, stepTitle: 'B', done: 2, correct: 1, skipped: 1, attempts: 4, hints: 3 });
  });
});

describe('a conversation on the page', () => {
  it('sends its text and prompt as events, takes one short line, echoes it and ends', async () => {
    const sent: [string, unknown][] = [];
    const talk = pageConversation('challenge', (e, d) => sent.push([e, d]));
    talk.io.write('hello\n');
    const asked = talk.io.ask('fault> ');
    expect(talk.asking()).toBe(true);
    expect(() => talk.answer('a\nb')).toThrow(/one line/);
    expect(() => talk.answer(42)).toThrow(/one line/);
    talk.answer('route-localnet');
    expect(await asked).toBe('route-localnet');
    expect(talk.replay()).toEqual([{ event: 'challenge-text', data: 'hello\nfault> route-localnet\n' }, { event: 'challenge-prompt', data: null }]);
    talk.end();
    expect(() => talk.answer('check')).toThrow(/ended/);
    expect(sent.map(([e]) => e)).toEqual(['challenge-text', 'challenge-prompt', 'challenge-text', 'challenge-prompt']);
  });
});

describe("the challenge's record, as it runs and for the instructor", () => {
  const plan: FaultPlan = { fault: 'route-localnet', summary: 'route_localnet=0 on node1', breakSteps: [{ host: 'node1', argv: ['true'] }], repairSteps: [], healthy: { host: 'node1', argv: ['true'], pattern: 'x' } };
  it('saves every change: wrong and right diagnosis, a check too early, the fix', async () => {
    const lines = ['service-chain-emptied', 'route-localnet', 'node2', 'node1', 'check', 'check'];
    const saved: ChallengeRecord[] = [];
    let fixedNow = false;
    const rec = await runChallenge({
      lab: 'l',
      choices: FAULTS,
      plan,
      io: { write: () => undefined, ask: async () => { const l = lines.shift(); if (l === 'check' && lines.length === 0) fixedNow = true; return l; } },
      fixed: async () => fixedNow,
      repair: async () => undefined,
      onChange: (r) => saved.push(r),
    });
    expect(rec).toMatchObject({ outcome: 'fixed', diagnosed: true, attempts: 4, fixChecks: 1 });
    expect(saved[0]).toMatchObject({ outcome: 'in-progress', diagnosed: false, attempts: 0 });
    expect(saved.find((r) => r.diagnosed)).toMatchObject({ attempts: 4, outcome: 'in-progress' });
    expect(saved.at(-1)).toEqual(rec);
  });
  const base: ChallengeRecord = { fault: 'route-localnet', host: 'node1', outcome: 'in-progress', diagnosed: false, attempts: 1, fixChecks: 0, hints: 2, at: 't' };
  it('hidden until found or shown; in progress only while its fault is in the lab', () => {
    expect(latestChallenge([], [])).toBeUndefined();
    expect(latestChallenge([base], ['route-localnet'])).toMatchObject({ outcome: 'in-progress', hidden: true, solved: false, attempts: 1, hints: 2 });
    expect(latestChallenge([base], [])).toMatchObject({ outcome: 'stopped', hidden: true });
    expect(latestChallenge([{ ...base, diagnosed: true }], ['route-localnet'])).toMatchObject({ hidden: false });
    expect(latestChallenge([{ ...base, outcome: 'gave-up' }], [])).toMatchObject({ outcome: 'gave-up', hidden: false, solved: false });
    expect(latestChallenge([base, { ...base, outcome: 'fixed', diagnosed: true, at: 'u' }], [])).toMatchObject({ outcome: 'fixed', solved: true, at: 'u' });
  });
});
