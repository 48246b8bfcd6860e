import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type InputProblem } from '../../lab/errors.js';
import { parseConntrack } from '../../lab/kernel/conntrack.js';
import { isLabOwnConnection } from '../../lab/kernel/ports.js';
import { parseSave } from '../../lab/plan/kube-proxy/rules.js';
import { planLab } from '../../lab/plan/plan.js';
import { loadTopology } from '../../lab/topology/load.js';
import { YamlFile } from '../../lab/util/yaml-file.js';
import { judge, normaliseAnswer, parseAddress, parseNumber, showExpected, type AnswerContext } from '../../lab/workshop/answers.js';
import { missingRules } from '../../lab/workshop/health.js';
import { availableWorkshops, loadWorkshop, parseWorkshop, workshopPathFor } from '../../lab/workshop/load.js';
import { conntrackField, globMatches, iptablesOnly, idleSeconds, matchingRules, mostRecent, probe, ruleField, type ProbeResult } from '../../lab/workshop/probes.js';
import { newProgress, nextStepIndex, progressFile, readProgress, recordStep, resetProgress, score, writeProgress, type Progress } from '../../lab/workshop/progress.js';
import { answerKind, type Check, type WorkshopStep } from '../../lab/workshop/schema.js';
import { runSession, type SessionIO } from '../../lab/workshop/session.js';
import { fill, splitCommand, wrap } from '../../lab/workshop/text.js';
import { problemsOf } from './helpers.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const nodeport = loadTopology('nodeport');

/** Parse a workshop text against the nodeport topology: the problems it reports, [] if it loads. */
const workshopProblems = (text: string): InputProblem[] =>
  problemsOf(() => parseWorkshop(YamlFile.parse(text, 'w.yaml'), nodeport.topology, '/x/w.yaml', 'nodeport'));

const STEP = `
  - id: one
    title: A step
    explain: What happens.
    question: What is it?
    check: { value: yes }`;

describe('workshop files', () => {
  it('every shipped workshop loads against its topology', () => {
    const names = availableWorkshops();
    expect(names).toEqual(expect.arrayContaining(['nodeport', 'clusterip', 'loadbalancer', 'nodeport-local', 'internal-local', 'affinity']));
    for (const name of names) {
      const t = loadTopology(name);
      const w = loadWorkshop(t.topology, t.path);
      expect(w.scenario).toBe(name);
      expect(w.workshop.steps.length).toBeGreaterThan(3);
      expect(new Set(w.workshop.steps.map((s) => s.id)).size).toBe(w.workshop.steps.length);
    }
  });

  it('the traffic-policy workshops ask only live questions, each with a command to look with', () => {
    for (const name of ['nodeport-local', 'internal-local', 'affinity']) {
      const t = loadTopology(name);
      const { workshop } = loadWorkshop(t.topology, t.path);
      expect(workshop.steps.length, name).toBeGreaterThanOrEqual(5);
      expect(workshop.steps.length, name).toBeLessThanOrEqual(8);
      expect(workshop.entry, name).toBeDefined();
      for (const s of workshop.steps) {
        expect(s.look.length, `${name}/${s.id}`).toBeGreaterThan(0);
        expect(s.check.value, `${name}/${s.id}: a fixed answer is not read from the lab`).toBeUndefined();
      }
    }
  });

  it('lives beside its topology', () => {
    expect(workshopPathFor('/p/topologies/nodeport.yaml')).toBe('/p/topologies/nodeport.workshop.yaml');
  });

  it('the nodeport workshop follows seed 000 with live checks of every kind', () => {
    const { workshop } = loadWorkshop(nodeport.topology, nodeport.path);
    const kinds = new Set(workshop.steps.flatMap((s) => Object.keys(s.check)));
    expect([...kinds].sort()).toEqual(['capture', 'conntrack', 'request', 'route', 'rule']);
    expect(workshop.entry).toEqual({ from: 'client', to: '10.240.0.4:32000' });
    expect(workshop.steps.every((s) => s.look.length > 0 && s.explain.length > 40)).toBe(true);
  });

  it('a minimal workshop loads, with defaults', () => {
    expect(workshopProblems(`title: T\nsteps:${STEP}`)).toEqual([]);
  });

  it('names file, field and line of each problem', () => {
    const problems = workshopProblems(`title: T
steps:
  - id: one
    title: A step
    explain: What happens.
    question: What is it?
    colour: red
    check: { value: yes }
  - id: one
    title: Again
    explain: Same id.
    question: Q?
    check: { value: yes, route: { node: node1, to: 10.244.1.2, field: dev } }
  - id: three
    title: Unknown hosts
    explain: x
    question: Q?
    check: { conntrack: { node: node9, original: { src: 10.241.0.4 }, field: reply.src } }
  - id: four
    title: Unknown endpoint
    explain: x
    question: Q?
    check: { request: { from: client, to: "10.240.0.4:32000", endpoint: web-9, field: client } }
`);
    const got = problems.map((p) => [p.field, p.line, p.message]);
    expect(got).toContainEqual(['steps[0].colour', 7, 'unknown key']);
    expect(problems.every((p) => p.file === 'w.yaml')).toBe(true);
  });

  it('checks references once the shape is right', () => {
    const problems = workshopProblems(`title: T
steps:
  - id: one
    title: A step
    explain: x
    question: Q?
    check: { value: yes }
  - id: one
    title: Again
    explain: x
    question: Q?
    check: { value: yes, route: { node: node1, to: 10.244.1.2, field: dev } }
  - id: three
    title: Unknown node
    explain: x
    question: Q?
    check: { conntrack: { node: [node1, node9], original: { src: 10.241.0.4 }, field: reply.src } }
  - id: four
    title: Unknown endpoint
    explain: x
    question: Q?
    check: { request: { from: web-1, to: "10.240.0.4:32000", endpoint: web-9, field: client } }
  - id: five
    title: No tuple
    explain: x
    question: Q?
    check: { conntrack: { node: node1, original: {}, field: reply.src } }
`);
    const got = problems.map((p) => [p.field, p.line]);
    expect(got).toEqual([
      ['steps[1].id', 8],
      ['steps[1].check', 12],
      ['steps[2].check.conntrack.node[1]', 17],
      ['steps[3].check.request.endpoint', 22],
      ['steps[4].check.conntrack.original', 27],
    ]);
    expect(problems[0]!.message).toMatch(/already the id of steps\[0\]/);
    expect(problems[1]!.message).toMatch(/exactly one of .* \(has route, value\)/);
  });

  it('rejects a bad field with its line', () => {
    const problems = workshopProblems(`title: T
steps:
  - id: one
    title: A step
    explain: x
    question: Q?
    check: { rule: { node: node1, chain: KUBE-SERVICES, field: "probability" } }
`);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ field: 'steps[0].check.rule.field', line: 7 });
  });

  it('infers how answers are compared from the check', () => {
    const step = (check: Check, kind?: WorkshopStep['kind']) => ({ check, kind }) as WorkshopStep;
    expect(answerKind(step({ conntrack: { node: 'node1', original: {}, field: 'reply.src' } }))).toBe('address');
    expect(answerKind(step({ conntrack: { node: ['node1'], original: {}, field: 'node' } }))).toBe('name');
    expect(answerKind(step({ rule: { node: 'node1', table: 'nat', chain: 'X', nth: 1, field: '-j' } }))).toBe('name');
    expect(answerKind(step({ rule: { node: 'node1', table: 'nat', chain: 'X', nth: 1, field: '--probability' } }))).toBe('number');
    expect(answerKind(step({ rule: { node: 'node1', table: 'nat', chain: 'X', nth: 1, field: 'count' } }))).toBe('number');
    expect(answerKind(step({ request: { from: 'client', to: 'a:1', field: 'pod' } }))).toBe('name');
    expect(answerKind(step({ route: { node: 'node1', to: '1.2.3.4', field: 'via' } }))).toBe('address');
    expect(answerKind(step({ value: 'yes' }))).toBe('text');
    expect(answerKind(step({ value: 'yes' }, 'pod'))).toBe('pod');
  });
});

describe('answer normalisation', () => {
  const address = (port: AnswerContext['port'] = 'optional'): AnswerContext => ({ kind: 'address', port });

  it('trims, unquotes, lower-cases', () => {
    expect(normaliseAnswer('  "KUBE-SVC-X"  ')).toBe('kube-svc-x');
    expect(normaliseAnswer("`eth0`.")).toBe('eth0');
    expect(normaliseAnswer('a   b')).toBe('a b');
  });

  it('reads addresses the ways people write them', () => {
    expect(parseAddress('10.244.1.2')).toEqual({ ip: '10.244.1.2' });
    expect(parseAddress('10.244.1.2:8443')).toEqual({ ip: '10.244.1.2', port: 8443 });
    expect(parseAddress('10.244.1.2.8443')).toEqual({ ip: '10.244.1.2', port: 8443 });
    expect(parseAddress('10.244.1.2 port 8443')).toEqual({ ip: '10.244.1.2', port: 8443 });
    expect(parseAddress('src=10.244.1.2')).toEqual({ ip: '10.244.1.2' });
    expect(parseAddress('10.244.1.2/32')).toEqual({ ip: '10.244.1.2' });
    expect(parseAddress(' 10.240.0.4:32000. ')).toEqual({ ip: '10.240.0.4', port: 32000 });
    expect(parseAddress('300.1.1.1')).toBeUndefined();
    expect(parseAddress('10.1.1.1:70000')).toBeUndefined();
    expect(parseAddress('web-2')).toBeUndefined();
  });

  it('reads IPv6 addresses the same ways, in RFC 5952 form', () => {
    expect(parseAddress('fd00:10:240::4')).toEqual({ ip: 'fd00:10:240::4' });
    expect(parseAddress('FD00:10:240:0:0:0:0:4')).toEqual({ ip: 'fd00:10:240::4' });
    expect(parseAddress('[fd00:10:240::4]:32000')).toEqual({ ip: 'fd00:10:240::4', port: 32000 });
    expect(parseAddress('[fd00:10:240::4]')).toEqual({ ip: 'fd00:10:240::4' });
    expect(parseAddress('fd00:10:244:1::2.8443')).toEqual({ ip: 'fd00:10:244:1::2', port: 8443 });
    expect(parseAddress('fd00:172:31::5/128')).toEqual({ ip: 'fd00:172:31::5' });
    expect(parseAddress('fd00:::4')).toBeUndefined();
    expect(parseAddress('[fd00::4]:70000')).toBeUndefined();
    const ctx: AnswerContext = { kind: 'address', port: 'ignore' };
    expect(judge('fd00:10:240:0::4', ['[fd00:10:240::4]:34663'], ctx).ok).toBe(true);
    expect(judge('10.240.0.4', ['[fd00:10:240::4]:34663'], ctx).ok).toBe(false);
  });

  it('reads numbers as decimals, percentages and fractions', () => {
    expect(parseNumber('0.50000000000')).toBe(0.5);
    expect(parseNumber('.5')).toBe(0.5);
    expect(parseNumber('50%')).toBe(0.5);
    expect(parseNumber('1/2')).toBe(0.5);
    expect(parseNumber('1/0')).toBeUndefined();
    expect(parseNumber('half')).toBeUndefined();
  });

  it('the port is optional unless required, and ignored when asked to', () => {
    const want = ['10.244.1.2:8443'];
    expect(judge('10.244.1.2', want, address()).ok).toBe(true);
    expect(judge('10.244.1.2:8443', want, address()).ok).toBe(true);
    expect(judge('10.244.1.2.8443', want, address()).ok).toBe(true);
    expect(judge('10.244.1.2:9999', want, address())).toMatchObject({ ok: false, near: true, message: 'the address 10.244.1.2 is right, the port 9999 is not: look at the port again' });
    expect(judge('10.244.0.3:8443', want, address())).toEqual({ ok: false });
    expect(judge('10.244.1.2', want, address('required'))).toMatchObject({ ok: false, near: true, message: expect.stringMatching(/port too/) });
    // Among several acceptable values, the right address wins over a plain miss.
    expect(judge('10.244.1.2:1', ['10.244.0.3:8443', '10.244.1.2:8443'], address())).toMatchObject({ near: true });
    expect(judge('10.240.0.4:1', ['10.240.0.4:43430'], address('ignore')).ok).toBe(true);
  });

  it('tells a malformed answer from a wrong one (not counted as a try)', () => {
    expect(judge('web-2', ['10.244.1.2:8443'], address())).toMatchObject({ ok: false, form: true });
    expect(judge('half', ['0.5'], { kind: 'number', port: 'optional' })).toMatchObject({ ok: false, form: true });
    expect(judge('   ', ['x'], { kind: 'text', port: 'optional' })).toMatchObject({ ok: false, form: true });
  });

  it('accepts any of several acceptable values and says which matched', () => {
    const v = judge('10.244.0.3', ['10.244.1.2:8443', '10.244.0.3:8443'], address());
    expect(v).toEqual({ ok: true, matched: '10.244.0.3:8443' });
    // The telling miss wins over a plain one.
    expect(judge('10.244.0.3', ['10.244.1.2:8443', '10.244.0.3:8443'], address('required')).message).toMatch(/port too/);
  });

  it('compares chain and interface names without case, a leading -j tolerated', () => {
    const name: AnswerContext = { kind: 'name', port: 'optional' };
    expect(judge('kube-svc-54ww65jlhzhrv7hc', ['KUBE-SVC-54WW65JLHZHRV7HC'], name).ok).toBe(true);
    expect(judge('-j KUBE-SVC-54WW65JLHZHRV7HC', ['KUBE-SVC-54WW65JLHZHRV7HC'], name).ok).toBe(true);
    expect(judge('KUBE-EXT-54WW65JLHZHRV7HC', ['KUBE-SVC-54WW65JLHZHRV7HC'], name).ok).toBe(false);
    expect(judge('ETH0', ['eth0'], name).ok).toBe(true);
  });

  it('compares probabilities as numbers', () => {
    const num: AnswerContext = { kind: 'number', port: 'optional' };
    for (const a of ['0.5', '.5', '50%', '1/2', '0.50000000000']) expect(judge(a, ['0.50000000000'], num).ok, a).toBe(true);
    expect(judge('0.33', ['0.33333333333'], num).ok).toBe(false);
    expect(judge('1/3', ['0.33333333333'], num).ok).toBe(true);
  });

  it('takes a pod by name or by address', () => {
    const pod: AnswerContext = { kind: 'pod', port: 'optional', hosts: new Map([['web-1', '10.244.0.3'], ['web-2', '10.244.1.2']]) };
    expect(judge('web-2', ['10.244.1.2:8443'], pod).ok).toBe(true);
    expect(judge('WEB-2', ['10.244.1.2:8443'], pod).ok).toBe(true);
    expect(judge('10.244.1.2', ['10.244.1.2:8443'], pod).ok).toBe(true);
    expect(judge('web-1', ['10.244.1.2:8443'], pod).ok).toBe(false);
    expect(showExpected(['10.244.1.2:8443'], pod)).toBe('web-2 (10.244.1.2)');
  });

  it('understands yes and no', () => {
    const text: AnswerContext = { kind: 'text', port: 'optional' };
    expect(judge('Nope', ['no'], text).ok).toBe(true);
    expect(judge('y', ['yes'], text).ok).toBe(true);
    expect(judge('10.244.0.0/16', ['10.244.0.0/16'], text).ok).toBe(true);
  });

  it('shows the expected value the way the question asks for it', () => {
    expect(showExpected(['10.240.0.4:43430'], address('ignore'))).toBe('10.240.0.4');
    expect(showExpected(['10.244.1.2:8443'], address())).toBe('10.244.1.2:8443');
    expect(showExpected(['0.50000000000'], { kind: 'number', port: 'optional' })).toBe('0.5');
  });
});

describe('progress store', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ws-progress-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips, one file per lab', () => {
    let p = newProgress('ws-a', 'nodeport', new Date('2026-01-01T00:00:00Z'));
    p = recordStep(p, 'first', { outcome: 'correct', attempts: 1, hints: 0, answer: 'web-2' }, new Date('2026-01-01T00:01:00Z'));
    writeProgress(p, dir);
    expect(progressFile('ws-a', dir)).toBe(join(dir, 'ws-a.json'));
    expect(readProgress('ws-a', 'nodeport', dir)).toEqual(p);
    expect(p.updatedAt).toBe('2026-01-01T00:01:00.000Z');
    expect(readProgress('ws-b', 'nodeport', dir)).toBeUndefined();
  });

  it('ignores progress of another scenario, and unreadable files', () => {
    writeProgress(newProgress('ws-a', 'clusterip'), dir);
    expect(readProgress('ws-a', 'nodeport', dir)).toBeUndefined();
    writeFileSync(join(dir, 'ws-a.json'), '{not json');
    expect(readProgress('ws-a', 'clusterip', dir)).toBeUndefined();
  });

  it('resumes at the first step not done, by id', () => {
    let p = newProgress('l', 's');
    const ids = ['a', 'b', 'c'];
    expect(nextStepIndex(p, ids)).toBe(0);
    p = recordStep(p, 'a', { outcome: 'correct', attempts: 1, hints: 0 });
    p = recordStep(p, 'c', { outcome: 'skipped', attempts: 2, hints: 1 });
    expect(nextStepIndex(p, ids)).toBe(1);
    // A step added to the file later does not lose what was done.
    expect(nextStepIndex(p, ['a', 'new', 'b', 'c'])).toBe(1);
    p = recordStep(p, 'b', { outcome: 'correct', attempts: 3, hints: 2 });
    expect(nextStepIndex(p, ids)).toBe(3);
    expect(score(p, ids)).toEqual({ total: 3, done: 3, correct: 2, firstTry: 1, skipped: 1 });
  });

  it('resets', () => {
    writeProgress(newProgress('ws-a', 'nodeport'), dir);
    resetProgress('ws-a', dir);
    expect(readProgress('ws-a', 'nodeport', dir)).toBeUndefined();
    resetProgress('ws-a', dir); // idempotent
  });
});

describe('live-state readers (pure parts)', () => {
  const save = readFileSync(join(FIXTURES, 'iptables-save', 'nodeport-node1.save'), 'utf8');
  const rules = parseSave(save).rules;

  it('finds rules by chain, comment and target globs', () => {
    const ext = matchingRules(rules, { table: 'nat', chain: 'KUBE-NODEPORTS', comment: 'default/web:https' });
    expect(ext.map((r) => ruleField(r, '-j'))).toEqual(['KUBE-EXT-54WW65JLHZHRV7HC']);
    const svc = matchingRules(rules, { table: 'nat', chain: 'KUBE-SERVICES', comment: 'default/web:https cluster IP' });
    expect(ruleField(svc[0]!, '-j')).toBe('KUBE-SVC-54WW65JLHZHRV7HC');
    expect(ruleField(svc[0]!, '-d')).toBe('172.31.0.5');
    const eps = matchingRules(rules, { table: 'nat', chain: 'KUBE-SVC-*', comment: 'default/web:https -> *' });
    expect(eps).toHaveLength(2);
    expect(ruleField(eps[0]!, '--probability')).toBe('0.50000000000');
    expect(ruleField(eps[0]!, 'chain')).toBe('KUBE-SVC-54WW65JLHZHRV7HC');
    const masq = matchingRules(rules, { table: 'nat', chain: 'KUBE-SVC-*', jump: 'KUBE-MARK-MASQ' });
    expect(ruleField(masq[0]!, '-s')).toBe('10.244.0.0/16');
    expect(matchingRules(rules, { table: 'filter', chain: 'KUBE-SVC-*' })).toEqual([]);
  });

  it('globs match whole strings', () => {
    expect(globMatches('KUBE-SVC-*', 'KUBE-SVC-ABC')).toBe(true);
    expect(globMatches('KUBE-SVC-*', 'KUBE-SVL-ABC')).toBe(false);
    expect(globMatches('a.b', 'axb')).toBe(false);
    expect(globMatches(undefined, undefined)).toBe(true);
    expect(globMatches('x', undefined)).toBe(false);
  });

  it('ranks connections by how long they have been idle', () => {
    const entries = parseConntrack(
      [
        'tcp      6 97 TIME_WAIT src=10.241.0.4 dst=10.240.0.4 sport=39494 dport=32000 src=10.244.1.2 dst=10.240.0.4 sport=8443 dport=43430 [ASSURED] mark=0 use=1',
        'tcp      6 119 TIME_WAIT src=10.241.0.4 dst=10.240.0.4 sport=39496 dport=32000 src=10.244.0.3 dst=10.244.0.1 sport=8443 dport=22635 [ASSURED] mark=0 use=1',
        'tcp      6 431999 ESTABLISHED src=10.241.0.4 dst=10.240.0.4 sport=39498 dport=32000 src=10.244.1.2 dst=10.240.0.4 sport=8443 dport=5000 [ASSURED] mark=0 use=1',
        'tcp      6 119 TIME_WAIT src=10.241.0.4 dst=10.240.0.4 sport=39500 dport=32000 src=10.244.1.2 dst=10.240.0.4 sport=8443 dport=5001 [ASSURED] mark=0 use=1',
      ].join('\n'),
    );
    const timeouts = { time_wait: 120, established: 432000 };
    expect(entries.map((e) => idleSeconds(e, timeouts))).toEqual([23, 1, 1, 1]);
    const ranked = entries.map((e) => ({ e, idle: idleSeconds(e, timeouts) }));
    expect(mostRecent(ranked).map((x) => x.e.original.sport)).toEqual([39496, 39498, 39500]);
    expect(mostRecent([])).toEqual([]);
    expect(conntrackField(entries[0]!, 'reply.src')).toBe('10.244.1.2:8443');
    expect(conntrackField(entries[0]!, 'reply.dst')).toBe('10.240.0.4:43430');
    expect(conntrackField(entries[0]!, 'original.dst')).toBe('10.240.0.4:32000');
  });

  it("the health check finds every planned rule in a node's iptables-save, and notices one missing", () => {
    const planned = parseSave(planLab(nodeport.topology).kubeProxy.find((n) => n.node === 'node1')!.payload).rules;
    expect(missingRules(planned, rules)).toEqual([]);
    const broken = parseSave(save.split('\n').filter((l) => !l.includes('-> 10.244.0.3:8443')).join('\n')).rules;
    const missing = missingRules(planned, broken);
    expect(missing).toHaveLength(1);
    expect(missing[0]!.chain).toBe('KUBE-SVC-54WW65JLHZHRV7HC');
  });

  it('the IPv6 plan of a dual-stack node matches ip6tables-save, which writes /128 on every address', () => {
    const payload6 = planLab(loadTopology('dualstack').topology).kubeProxy.find((n) => n.node === 'node1')!.payload6!;
    const planned = parseSave(payload6).rules;
    const clusterIp = planned.find((r) => r.options.get('--comment') === 'default/web:https cluster IP' && r.chain === 'KUBE-SERVICES')!;
    expect(clusterIp.options.get('-d')).toBe('fd00:172:31::5');
    // What the kernel prints back: the same rules, the destination as fd00:172:31::5/128.
    const live = planned.map((r) => (r === clusterIp ? { ...r, options: new Map([...r.options, ['-d', 'fd00:172:31::5/128']]) } : r));
    expect(missingRules(planned, live)).toEqual([]);
    expect(missingRules(planned, live.filter((_, i) => planned[i] !== clusterIp))).toHaveLength(1);
  });
});

describe('text helpers', () => {
  it('fills in the lab name', () => {
    expect(fill('lab rules {lab} node1; lab conntrack {lab} node1', 'ws-test')).toBe('lab rules ws-test node1; lab conntrack ws-test node1');
  });

  it('wraps paragraphs and keeps indented lines', () => {
    const text = 'alpha beta gamma delta epsilon\nzeta eta theta\n\n  keep   this line as it is, however long it is\n- a list item';
    expect(wrap(text, 30, '  ').split('\n')).toEqual(['  alpha beta gamma delta', '  epsilon zeta eta theta', '', '    keep   this line as it is, however long it is', '  - a list item']);
  });

  it('splits commands, refusing what needs a shell', () => {
    expect(splitCommand('lab exec ws client -- curl -s 10.240.0.4:32000')).toEqual(['lab', 'exec', 'ws', 'client', '--', 'curl', '-s', '10.240.0.4:32000']);
    expect(splitCommand(`lab exec ws client -- curl -w '%{remote_ip} x' "a b"`)).toEqual(['lab', 'exec', 'ws', 'client', '--', 'curl', '-w', '%{remote_ip} x', 'a b']);
    expect(splitCommand('lab rules ws node1 | grep 32000')).toBeUndefined();
    expect(splitCommand('echo "unterminated')).toBeUndefined();
  });
});

describe('rule questions in nftables mode', () => {
  it('say the lab runs nftables mode instead of calling its rules damaged (no kernel read)', async () => {
    const nft = loadTopology('nodeport', { 'kubeProxy.mode': 'nftables' }).topology;
    const r = await probe({ rule: { node: 'node1', table: 'nat', chain: 'KUBE-NODEPORTS', nth: 1, field: '-j' } } as never, { lab: 'ws', topology: nft });
    expect(r).toEqual({ unavailable: iptablesOnly('ws', 'node1') });
    expect(iptablesOnly('ws', 'node1')).toContain('runs kube-proxy in nftables mode');
    expect(iptablesOnly('ws', 'node1')).not.toContain('damaged');
  });
});

describe("the learner's conntrack listing", () => {
  it("leaves out the lab's own connections, not those another node translated", () => {
    const relayed = new Set(['10.240.0.4', '10.240.0.5', '10.244.0.0', '10.244.1.0']);
    const entry = (src: string, sport: number) => ({ original: { src, sport } });
    expect(isLabOwnConnection(entry('10.241.0.4', 14124), relayed)).toBe(true); // verify's request from the client
    expect(isLabOwnConnection(entry('10.241.0.4', 41030), relayed)).toBe(false); // the learner's curl (an ephemeral port)
    expect(isLabOwnConnection(entry('10.240.0.4', 14124), relayed)).toBe(false); // node1's SNAT port, seen on node2
    expect(isLabOwnConnection(entry('10.244.0.0', 20000), relayed)).toBe(false); // flannel.1's, under vxlan
  });
});

describe('the session engine', () => {
  const workshopText = `title: Test workshop
intro: Hello {lab}.
outro: Bye {lab}.
steps:
  - id: pod
    title: Which pod
    explain: Explains.
    look: ["lab exec {lab} client -- curl -s 10.240.0.4:32000"]
    question: Which pod?
    check: { conntrack: { node: node1, original: { src: 10.241.0.4 }, field: reply.src } }
    kind: pod
    hints: [first hint, second hint]
    feedback: [{ answer: web-9, say: "web-9 does not exist" }]
    debrief: Debrief one.
  - id: chain
    title: Which chain
    explain: Explains.
    question: Which chain?
    check: { rule: { node: node1, chain: KUBE-NODEPORTS, field: "-j" } }
  - id: prob
    title: Which probability
    explain: Explains.
    question: Which probability?
    check: { rule: { node: node1, chain: "KUBE-SVC-*", comment: "* -> *", field: "--probability" } }
`;
  const loaded = parseWorkshop(YamlFile.parse(workshopText, 'w.yaml'), nodeport.topology, '/x/test.workshop.yaml', 'test');
  const hosts = new Map([['web-1', '10.244.0.3'], ['web-2', '10.244.1.2']]);
  const live: Record<string, ProbeResult> = {
    conntrack: { values: ['10.244.1.2:8443'] },
    rule: { values: ['KUBE-EXT-54WW65JLHZHRV7HC'] },
  };

  async function session(lines: string[], progress = newProgress('ws', 'test'), probes: Partial<Record<string, ProbeResult>> = live, withRun = false) {
    let out = '';
    const input = [...lines];
    const saved: Progress[] = [];
    const ran: string[] = [];
    const io: SessionIO = { write: (t) => void (out += t), ask: async (prompt) => { out += prompt; const l = input.shift(); if (l !== undefined) out += `${l}\n`; return l; } };
    const result = await runSession({
      loaded,
      lab: 'ws',
      hosts,
      progress,
      io,
      probe: async (c) => {
        if (c.rule?.field === '--probability') return probes.prob ?? { values: ['0.50000000000'] };
        return (c.conntrack ? probes.conntrack : probes.rule) ?? { unavailable: 'nothing to read' };
      },
      save: (p) => saved.push(p),
      ...(withRun ? { runLooks: async (looks) => void ran.push(...looks.map(String)) } : {}),
    });
    return { out, result, saved, ran, left: input };
  }

  it('runs through every step with right answers', async () => {
    const { out, result, saved } = await session(['web-2', 'kube-ext-54ww65jlhzhrv7hc', '50%']);
    expect(result.outcome).toBe('finished');
    expect(Object.keys(result.progress.steps)).toEqual(['pod', 'chain', 'prob']);
    expect(result.progress.steps.pod).toMatchObject({ outcome: 'correct', attempts: 1, hints: 0, answer: 'web-2' });
    expect(saved).toHaveLength(3); // saved after every step
    expect(out).toContain('Hello ws.');
    expect(out).toContain('$ lab exec ws client -- curl -s 10.240.0.4:32000');
    expect(out).toContain('right: the lab says web-2 (10.244.1.2)');
    expect(out).toContain('Debrief one.');
    expect(out).toContain('Workshop complete. 3 of 3 answered (3 at the first try), 0 skipped.');
    expect(out).toContain('Bye ws.');
  });

  it('gives hints after wrong answers, and targeted feedback', async () => {
    const { out, result } = await session(['web-1', 'web-9', 'hint', 'web-2', 'quit']);
    expect(out).toMatch(/answer> web-1\n {2}not quite\.\n {2}Hint 1\/2: first hint/);
    expect(out).toMatch(/answer> web-9\n {2}not quite: web-9 does not exist\n {2}Hint 2\/2: second hint/);
    expect(out).toMatch(/answer> hint\n {2}no more hints/);
    expect(result.progress.steps.pod).toMatchObject({ outcome: 'correct', attempts: 3, hints: 2 });
    expect(result.outcome).toBe('stopped');
  });

  it('skip shows the live answer and moves on', async () => {
    const { out, result } = await session(['skip', 'skip', 'skip']);
    expect(out).toContain("skipped. The lab's answer: web-2 (10.244.1.2)");
    expect(out).toContain("skipped. The lab's answer: KUBE-EXT-54WW65JLHZHRV7HC");
    expect(out).toContain("skipped. The lab's answer: 0.5");
    expect(score(result.progress, ['pod', 'chain', 'prob']).skipped).toBe(3);
  });

  it('stops at quit or end of input, and resumes where it stopped', async () => {
    const first = await session(['web-2', 'quit', 'never read']);
    expect(first.result.outcome).toBe('stopped');
    expect(first.left).toEqual(['never read']);
    expect(first.out).toContain('stopped at step 2 of 3; progress is saved. Resume with: lab workshop ws');

    const second = await session(['KUBE-EXT-54WW65JLHZHRV7HC'], first.result.progress);
    expect(second.out).toContain('welcome back: 1 of 3 steps done, continuing at step 2');
    expect(second.out).not.toContain('Hello ws.');
    expect(second.out).not.toContain('Step 1 of 3');
    expect(second.result.outcome).toBe('stopped'); // input ended at step 3
    expect(Object.keys(second.result.progress.steps)).toEqual(['pod', 'chain']);

    const third = await session(['0.5'], second.result.progress);
    expect(third.result.outcome).toBe('finished');
  });

  it('does not count what it cannot check yet, nor answers of the wrong form', async () => {
    const { out, result } = await session(['web-2', 'skip', 'skip'], undefined, { conntrack: { unavailable: 'no connection yet: run the command above' }, rule: { values: ['KUBE-EXT-X'] } });
    expect(out).toContain('cannot check yet: no connection yet: run the command above');
    expect(result.progress.steps.pod).toMatchObject({ outcome: 'skipped', attempts: 0 });

    const form = await session(['skip', 'skip', 'half', '0.5']);
    expect(form.out).toContain('a number is expected here');
    expect(form.result.progress.steps.prob).toMatchObject({ outcome: 'correct', attempts: 1 });
  });

  it('the right address with the wrong port says so, and costs neither a try nor a hint', async () => {
    const asAddress = parseWorkshop(YamlFile.parse(workshopText.replace('    kind: pod\n', '    kind: address\n'), 'w.yaml'), nodeport.topology, '/x/test.workshop.yaml', 'test');
    let out = '';
    const input = ['10.244.1.2:9999', '10.244.1.2:8443', 'quit'];
    const r = await runSession({
      loaded: asAddress,
      lab: 'ws',
      hosts,
      progress: newProgress('ws', 'test'),
      io: { write: (t) => void (out += t), ask: async () => input.shift() },
      probe: async () => live.conntrack!,
      save: () => undefined,
    });
    expect(out.replace(/\s+/g, ' ')).toContain('almost: the address 10.244.1.2 is right, the port 9999 is not: look at the port again (not counted as a try)');
    expect(out).not.toContain('Hint 1/2');
    expect(r.progress.steps.pod).toMatchObject({ outcome: 'correct', attempts: 1, hints: 0 });
  });

  it('offers run only when it can run commands', async () => {
    const without = await session(['run', 'quit']);
    expect(without.out).toContain('run is not available here');
    const withRun = await session(['run', 'quit'], undefined, live, true);
    expect(withRun.ran).toEqual(['lab exec {lab} client -- curl -s 10.240.0.4:32000']);
  });
});
