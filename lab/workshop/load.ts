import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InputError, type InputProblem } from '../errors.js';
import { displayPath, TOPOLOGIES_DIR } from '../topology/paths.js';
import type { Topology } from '../topology/schema.js';
import { YamlFile } from '../util/yaml-file.js';
import { checkKind, workshopSchema, type Workshop } from './schema.js';

export interface LoadedWorkshop {
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
  return { workshop, path, scenario };
}

/** References into the topology, and the one-check-per-step rule, with the line of each problem. */
export function checkWorkshop(w: Workshop, t: Topology, file: YamlFile): InputProblem[] {
  const problems: InputProblem[] = [];
  const hosts = new Set([...t.nodes, ...t.clients, ...t.pods, ...t.routers].map((h) => h.name));
  const nodes = new Set(t.nodes.map((n) => n.name));
  const pods = new Set(t.pods.map((p) => p.name));
  const senders = new Set([...t.clients, ...t.pods].map((h) => h.name));
  const need = (ok: boolean, path: PropertyKey[], message: string) => {
    if (!ok) problems.push(file.problem(path, message));
  };

  if (w.entry) need(senders.has(w.entry.from), ['entry', 'from'], `"${w.entry.from}" is not a client or pod of this topology`);

  const seen = new Map<string, number>();
  w.steps.forEach((s, i) => {
    const here = ['steps', i];
    const first = seen.get(s.id);
    need(first === undefined, [...here, 'id'], `"${s.id}" is already the id of steps[${first}]`);
    if (first === undefined) seen.set(s.id, i);

    const c = s.check;
    const kinds = Object.keys(c).filter((k) => (c as Record<string, unknown>)[k] !== undefined);
    if (kinds.length !== 1) {
      problems.push(file.problem([...here, 'check'], `must hold exactly one of conntrack, rule, request, capture, route, value (has ${kinds.join(', ') || 'none'})`));
      return;
    }
    const at = [...here, 'check', checkKind(c)];
    if (c.conntrack) {
      const list = Array.isArray(c.conntrack.node) ? c.conntrack.node : [c.conntrack.node];
      list.forEach((n, k) => need(nodes.has(n), Array.isArray(c.conntrack!.node) ? [...at, 'node', k] : [...at, 'node'], `"${n}" is not a node of this topology`));
      need(Boolean(c.conntrack.original.src || c.conntrack.original.dst), [...at, 'original'], 'needs src or dst to tell which connection is meant');
    }
    if (c.rule) need(nodes.has(c.rule.node), [...at, 'node'], `"${c.rule.node}" is not a node of this topology`);
    if (c.route) need(hosts.has(c.route.node), [...at, 'node'], `no host named "${c.route.node}"`);
    const traffic = c.request ?? c.capture;
    if (traffic) {
      need(senders.has(traffic.from), [...at, 'from'], `"${traffic.from}" is not a client or pod of this topology`);
      if (traffic.endpoint) need(pods.has(traffic.endpoint), [...at, 'endpoint'], `no pod named "${traffic.endpoint}"`);
    }
    if (c.capture) {
      const host = c.capture.at.split(':')[0]!;
      need(hosts.has(host), [...at, 'at'], `no host named "${host}"`);
    }
  });
  return problems;
}
