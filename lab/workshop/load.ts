import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InputError, type InputProblem } from '../errors.js';
import { displayPath, TOPOLOGIES_DIR } from '../topology/paths.js';
import type { Topology } from '../topology/schema.js';
import { YamlFile } from '../util/yaml-file.js';
import { POD_NETWORK_MODES } from '../topology/schema.js';
import { checkPathOf, stepApplies, stepInModes, workshopInModes, type LabModes } from './modes.js';
import { checkKind, PROXY_MODES, workshopSchema, type Check, type Workshop } from './schema.js';

export interface LoadedWorkshop {
  /** The workshop as the lab's modes ask it (kube-proxy mode, pod-network mode): see modes.ts. */
  workshop: Workshop;
  /** Absolute path of the workshop file. */
  path: string;
  /** The scenario, named after the topology file: "nodeport" for topologies/nodeport.yaml. */
  scenario: string;
}

/** topologies/nodeport.yaml → topologies/nodeport.workshop.yaml: the workshop lives beside its topology. */
export function workshopPathFor(topologyPath: string): string {
  return join(dirname(topologyPath), `${scenarioOf(topologyPath)}.workshop.yaml`);
}

export const scenarioOf = (topologyPath: string) => basename(topologyPath).replace(/\.ya?ml$/, '');

/** The scenarios of the project that have a workshop file. */
export function availableWorkshops(dir = TOPOLOGIES_DIR): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.workshop.yaml') && existsSync(join(dir, f.replace(/\.workshop\.yaml$/, '.yaml'))))
      .map((f) => f.replace(/\.workshop\.yaml$/, ''))
      .sort();
  } catch {
    return [];
  }
}

export function hasWorkshop(topologyPath: string): boolean {
  return existsSync(workshopPathFor(topologyPath));
}

/** Read, validate and check the workshop of a topology. Throws InputError naming file, field and line. */
export function loadWorkshop(t: Topology, topologyPath: string): LoadedWorkshop {
  const path = workshopPathFor(topologyPath);
  if (!existsSync(path)) {
    const have = availableWorkshops(dirname(topologyPath));
    throw new InputError([
      {
        file: displayPath(path),
        field: '',
        message: `scenario "${scenarioOf(topologyPath)}" has no workshop yet${have.length ? ` (workshops: ${have.join(', ')})` : ''}`,
      },
    ]);
  }
  return parseWorkshop(YamlFile.read(path, displayPath(path)), t, path, scenarioOf(topologyPath));
}

export function parseWorkshop(file: YamlFile, t: Topology, path: string, scenario: string): LoadedWorkshop {
  const workshop = file.validate(workshopSchema);
  const problems = checkWorkshop(workshop, t, file);
  if (problems.length > 0) throw new InputError(problems);
  return { workshop: workshopInModes(workshop, { proxy: t.kubeProxy.mode, podNetwork: t.podNetwork.mode }), path, scenario };
}

/** References into the topology, and the one-check-per-step rule, with the line of each problem. */
export function checkWorkshop(w: Workshop, t: Topology, file: YamlFile): InputProblem[] {
  const problems: InputProblem[] = [];
  const senders = new Set([...t.clients, ...t.pods].map((h) => h.name));
  const need = (ok: boolean, path: PropertyKey[], message: string) => {
    if (!ok) problems.push(file.problem(path, message));
  };

  if (w.entry) need(senders.has(w.entry.from), ['entry', 'from'], `"${w.entry.from}" is not a client or pod of this topology`);

  const seen = new Map<string, number>();
  w.steps.forEach((s, i) => {
    const first = seen.get(s.id);
    need(first === undefined, ['steps', i, 'id'], `"${s.id}" is already the id of steps[${first}]`);
    if (first === undefined) seen.set(s.id, i);
  });

  // Every step's check, in every mode of the lab it is asked in (each problem once).
  const said = new Set<string>();
  for (const proxy of PROXY_MODES) {
    for (const podNetwork of POD_NETWORK_MODES) {
      const modes: LabModes = { proxy, podNetwork };
      w.steps.forEach((s, i) => {
        if (!stepApplies(s, modes)) return;
        for (const p of checkProblems(stepInModes(s, modes).check, ['steps', i, ...checkPathOf(s, modes)], t, file)) {
          const key = `${p.line}:${p.field}:${p.message}`;
          if (!said.has(key)) problems.push(p);
          said.add(key);
        }
      });
    }
  }
  if (problems.length === 0) {
    for (const proxy of PROXY_MODES) {
      for (const podNetwork of POD_NETWORK_MODES) {
        if (workshopInModes(w, { proxy, podNetwork }).steps.length === 0) problems.push(file.problem(['steps'], `no step is asked in kube-proxy mode ${proxy} with podNetwork mode ${podNetwork}`));
      }
    }
  }
  return problems;
}

/** The problems of one check (at its field path): the hosts it names, and one kind of check. */
function checkProblems(c: Check, here: PropertyKey[], t: Topology, file: YamlFile): InputProblem[] {
  const problems: InputProblem[] = [];
  const hosts = new Set([...t.nodes, ...t.clients, ...t.pods, ...t.routers].map((h) => h.name));
  const nodes = new Set(t.nodes.map((n) => n.name));
  const pods = new Set(t.pods.map((p) => p.name));
  const senders = new Set([...t.clients, ...t.pods].map((h) => h.name));
  const need = (ok: boolean, path: PropertyKey[], message: string) => {
    if (!ok) problems.push(file.problem(path, message));
  };
  const kinds = Object.keys(c).filter((k) => (c as Record<string, unknown>)[k] !== undefined);
  if (kinds.length !== 1) {
    return [file.problem(here, `must hold exactly one of conntrack, rule, request, capture, route, nft, neighbour, fdb, value (has ${kinds.join(', ') || 'none'})`)];
  }
  const at = [...here, checkKind(c)];
  if (c.conntrack) {
    const list = Array.isArray(c.conntrack.node) ? c.conntrack.node : [c.conntrack.node];
    list.forEach((n, k) => need(nodes.has(n), Array.isArray(c.conntrack!.node) ? [...at, 'node', k] : [...at, 'node'], `"${n}" is not a node of this topology`));
    need(Boolean(c.conntrack.original.src || c.conntrack.original.dst), [...at, 'original'], 'needs src or dst to tell which connection is meant');
  }
  if (c.rule) need(nodes.has(c.rule.node), [...at, 'node'], `"${c.rule.node}" is not a node of this topology`);
  if (c.nft) problems.push(...nftProblems(c.nft, at, nodes, file));
  if (c.route) need(hosts.has(c.route.node), [...at, 'node'], `no host named "${c.route.node}"`);
  const onHost = c.neighbour ?? c.fdb;
  if (onHost) need(hosts.has(onHost.node), [...at, 'node'], `no host named "${onHost.node}"`);
  const traffic = c.request ?? c.capture;
  if (traffic) {
    need(senders.has(traffic.from), [...at, 'from'], `"${traffic.from}" is not a client or pod of this topology`);
    if (traffic.endpoint) need(pods.has(traffic.endpoint), [...at, 'endpoint'], `no pod named "${traffic.endpoint}"`);
  }
  if (c.capture) {
    const host = c.capture.at.split(':')[0]!;
    need(hosts.has(host), [...at, 'at'], `no host named "${host}"`);
  }
  return problems;
}

/** An nft check names one map, set or chain, and asks a field that one has. */
function nftProblems(c: NonNullable<Check['nft']>, at: PropertyKey[], nodes: Set<string>, file: YamlFile): InputProblem[] {
  const problems: InputProblem[] = [];
  const need = (ok: boolean, path: PropertyKey[], message: string) => {
    if (!ok) problems.push(file.problem(path, message));
  };
  need(nodes.has(c.node), [...at, 'node'], `"${c.node}" is not a node of this topology`);
  const objects = (['map', 'set', 'chain'] as const).filter((k) => c[k] !== undefined);
  if (objects.length !== 1) return [...problems, file.problem(at, `must name exactly one of map, set, chain (has ${objects.join(', ') || 'none'})`)];
  const fields: Record<(typeof objects)[number], string[]> = { map: ['verdict', 'elements', 'count'], set: ['elements', 'timeout', 'count'], chain: ['chain', 'match', 'count'] };
  const what = objects[0]!;
  need(fields[what].includes(c.field), [...at, 'field'], `a ${what} has no field "${c.field}" (one of ${fields[what].join(', ')})`);
  if (c.field === 'verdict') need(c.key !== undefined, [...at, 'key'], 'field verdict needs the key of the element, e.g. "tcp . 32000"');
  if (c.key !== undefined) need(what === 'map', [...at, 'key'], 'key is the key of a map element: it needs map');
  if (c.rule !== undefined) {
    need(what === 'chain', [...at, 'rule'], 'rule matches a rule of a chain: it needs chain');
    let groups = 0;
    try {
      groups = new RegExp(`${c.rule}|`).exec('')!.length - 1;
    } catch (e) {
      problems.push(file.problem([...at, 'rule'], `not a regular expression: ${(e as Error).message}`));
    }
    if (c.field === 'match') need(groups >= 1, [...at, 'rule'], 'field match reads the rule\'s first group: put one in, e.g. "numgen random mod (\\d+)"');
  } else if (c.field === 'match') {
    need(false, [...at, 'rule'], 'field match needs rule, a regular expression with a group');
  }
  return problems;
}
