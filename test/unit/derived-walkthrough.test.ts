import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../lab/errors.js';
import { loadTopology } from '../../lab/topology/load.js';
import { TOPOLOGIES_DIR } from '../../lab/topology/paths.js';
import { deriveWalkthrough } from '../../lab/verify/derive/index.js';
import { loadWalkthrough, type Step, type Walkthrough, type WalkthroughPath } from '../../lab/verify/walkthrough.js';

/**
 * Each built-in scenario's derived walkthrough agrees with its written one. "Agrees" means, for
 * every written path whose traffic goes to a Service address the derivation tries (same sender,
 * same ip:port): the derived walkthrough has a path of the same outcome, the same endpoint and the
 * same translating node (via) where the written one names them; and for the checks both make about
 * the connection (conntrack tuples, the source the pod saw, the DNAT, the refusing rule), the
 * derived expectation equals the written one wherever the written one is a constant (a written
 * $snat or $pod leaves it open). A written share of 0 (or 1) for a pod is a pod the derivation
 * excludes (or the only one it lets answer).
 */
const CASES: [scenario: string, walkthrough: string, overrides: Record<string, string>][] = [
  ['nodeport', 'nodeport', {}],
  ['clusterip', 'clusterip', {}],
  ['loadbalancer', 'loadbalancer', {}],
  ['nodeport-local', 'nodeport-local', {}],
  ['nodeport-local', 'nodeport-local-unready', { 'pods.web-2.ready': 'false' }],
  ['nodeport-local', 'nodeport-local-terminating', { 'pods.web-2.terminating': 'true' }],
  ['nodeport', 'nodeport-terminating', { 'pods.web-2.terminating': 'true' }],
  ['nodeport', 'nodeport-all-terminating', { 'pods.web-1.terminating': 'true', 'pods.web-2.terminating': 'true' }],
  ['internal-local', 'internal-local', {}],
  ['internal-local', 'internal-local-unready', { 'pods.web-2.ready': 'false' }],
  ['affinity', 'affinity', {}],
  ['lb-source-ranges', 'lb-source-ranges', {}],
  ['loadbalancer-local', 'loadbalancer-local', {}],
  ['loadbalancer-local', 'loadbalancer-local-unready', { 'pods.web-2.ready': 'false' }],
  ['dualstack', 'dualstack', {}],
];

const COMPARED = ['conntrack', 'answer', 'dnatRule', 'rule'] as const;
const isVariable = (v: unknown) => JSON.stringify(v).includes('$snat') || JSON.stringify(v).includes('$pod');

function sameTraffic(w: Walkthrough, a: WalkthroughPath, d: WalkthroughPath): boolean {
  const ta = a.traffic ?? w.traffic;
  return ta.from === d.traffic!.from && ta.to === d.traffic!.to;
}

/** The differences between a written path and the derived ones of its traffic ([] when they agree). */
function disagreements(w: Walkthrough, written: WalkthroughPath, derived: WalkthroughPath[]): string[] {
  const ofTraffic = derived.filter((d) => sameTraffic(w, written, d));
  const match = ofTraffic.find(
    (d) => d.outcome === written.outcome && (written.endpoint === 'any' || d.endpoint === written.endpoint || (d.endpoint === 'any' && written.endpoint)) && (!written.via || d.via === written.via),
  );
  if (!match) return [`${written.name}: no derived path ${written.outcome} ${written.endpoint ?? ''} via ${written.via ?? '-'} (derived: ${ofTraffic.map((d) => `${d.outcome} ${d.endpoint ?? ''} ${d.via ?? ''}`).join('; ')})`];
  const out: string[] = [];
  for (const s of written.steps) {
    const kind = COMPARED.find((k) => s.expect?.[k] !== undefined);
    if (!kind || isVariable(s.expect![kind]) || (match.endpoint === 'any' && kind !== 'rule')) continue;
    const mine = match.steps.filter((d: Step) => d.expect?.[kind] !== undefined && (kind === 'answer' || d.at === s.at));
    if (kind === 'rule') {
      const strip = (x: Step) => JSON.stringify(x.expect!.rule);
      if (mine.length && !mine.some((d) => strip(d) === strip(s))) out.push(`${written.name}: rule ${strip(s)} vs ${mine.map(strip).join(', ')}`);
      continue;
    }
    if (mine.length === 0) out.push(`${written.name}: derived has no ${kind} at ${s.at}`);
    else if (!mine.some((d) => JSON.stringify(d.expect![kind]) === JSON.stringify(s.expect![kind]))) out.push(`${written.name}: ${kind} ${JSON.stringify(s.expect![kind])} vs ${mine.map((d) => JSON.stringify(d.expect![kind])).join(', ')}`);
  }
  // share 0: a pod no connection of this traffic may reach; share 1: the only one.
  const answering = new Set(ofTraffic.flatMap((d) => (d.endpoint && d.outcome === 'answered' ? [d.endpoint] : [])));
  const excluded = new Set(ofTraffic.flatMap((d) => d.steps.flatMap((x) => (x.expect?.share?.max === 0 ? x.expect.share.endpoints : []))));
  for (const s of written.steps) {
    const share = s.expect?.share;
    if (share?.max === 0) for (const pod of share.endpoints) if (!excluded.has(pod)) out.push(`${written.name}: ${pod} should be excluded`);
    if (share?.min === 1 && share.endpoints.length === 1 && !answering.has('any') && [...answering].join() !== share.endpoints[0]) out.push(`${written.name}: only ${share.endpoints[0]} should answer, derived ${[...answering].join(', ')}`);
  }
  return out;
}

describe('derived walkthroughs', () => {
  let compared = 0;
  it.each(CASES)('%s agrees with %s.walkthrough.yaml', (scenario, name, overrides) => {
    const { topology, path } = loadTopology(scenario, overrides);
    const written = loadWalkthrough({ ...topology, walkthrough: join(TOPOLOGIES_DIR, `${name}.walkthrough.yaml`) }, path).walkthrough;
    const derived = deriveWalkthrough(topology, path).walkthrough.paths;
    const targets = new Set(derived.map((d) => `${d.traffic!.from} ${d.traffic!.to}`));
    const comparable = written.paths.filter((p) => targets.has(`${(p.traffic ?? written.traffic).from} ${(p.traffic ?? written.traffic).to}`));
    expect(comparable.length).toBeGreaterThan(0);
    compared += comparable.length;
    expect(comparable.flatMap((p) => disagreements(written, p, derived))).toEqual([]);
  });

  it('a dual-stack world is derived in both families, the IPv6 paths at [ip]:port', () => {
    const { topology, path } = loadTopology('dualstack');
    const { walkthrough: w, skipped } = deriveWalkthrough(topology, path);
    const targets = [...new Set(w.paths.map((p) => p.traffic!.to))];
    // The localhost NodePort (iptables mode, IPv4 only: the IPv6 proxier writes no localhost guard and ::1 is not routed) once.
    expect(targets).toEqual(['172.31.0.5:443', '10.240.0.4:32000', '10.240.0.5:32000', '127.0.0.1:32000', '[fd00:172:31::5]:443', '[fd00:10:240::4]:32000', '[fd00:10:240::5]:32000']);
    const cross = w.paths.find((p) => p.name === 'default/web:https nodePort from client to [fd00:10:240::4]:32000 -> web-2')!;
    expect(cross.steps.find((s) => s.expect?.conntrack)!.expect!.conntrack).toEqual({ original: { src: '$client', dst: '[fd00:10:240::4]:32000' }, reply: { src: '[fd00:10:244:1::2]:8443', dst: '[fd00:10:240::4]:*' } });
    const same = w.paths.find((p) => p.name === 'default/web:https nodePort from client to [fd00:10:240::4]:32000 -> web-1')!;
    expect(same.steps.find((s) => s.expect?.answer)!.expect!.answer).toEqual({ client: '[fd00:10:244::1]:*' });
    expect(skipped).toEqual([]);
  });

  it('compared most written paths', () => {
    expect(compared).toBeGreaterThanOrEqual(40);
  });

  it('a derived walkthrough loads as a walkthrough file (what lab walkthrough writes)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'derived-'));
    try {
      for (const scenario of ['nodeport', 'clusterip', 'lb-source-ranges', 'affinity']) {
        const { topology, path } = loadTopology(scenario);
        writeFileSync(join(dir, 'w.yaml'), stringify(deriveWalkthrough(topology, path).walkthrough, { aliasDuplicateObjects: false }));
        expect(() => loadWalkthrough({ ...topology, walkthrough: join(dir, 'w.yaml') }, path)).not.toThrow();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a world where nothing answers is refused, naming why', () => {
    const { topology, path } = loadTopology('nodeport', { 'pods.web-1.ready': 'false', 'pods.web-2.ready': 'false' });
    expect(() => deriveWalkthrough(topology, path)).toThrow(InputError);
    expect(() => deriveWalkthrough(topology, path)).toThrow(/nothing in this world can be reached[\s\S]*has no usable endpoint/);
  });

  it('follows the topology, not the rules: an expectation changes with the policy', () => {
    const local = deriveWalkthrough(loadTopology('nodeport', { 'services.web.externalTrafficPolicy': 'Local' }).topology).walkthrough;
    const via2 = local.paths.filter((p) => p.traffic!.to === '10.240.0.5:32000');
    expect(via2.map((p) => p.endpoint)).toEqual(['web-2']);
    expect(via2[0]!.steps.find((s) => s.expect?.answer)?.expect?.answer).toEqual({ client: '$client' });
  });
});
