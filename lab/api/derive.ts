import { stringify } from 'yaml';
import { readState } from '../state/store.js';
import { loadTopology } from '../topology/load.js';
import { isLabName } from '../topology/names.js';
import { displayPath } from '../topology/paths.js';
import type { Topology } from '../topology/schema.js';
import { deriveWalkthrough, type DerivedWalkthrough } from '../verify/derive/index.js';
import { runningLab } from './running.js';

/** The topology a lab runs (after scale, kill, apply) or a scenario or file names, with its path. */
function topologyOf(ref: string, overrides: Record<string, string>): { topology: Topology; path: string } {
  const state = isLabName(ref) && Object.keys(overrides).length === 0 ? readState(ref) : undefined;
  return state?.phase === 'up' ? runningLab(ref) : loadTopology(ref, overrides);
}

/** The walkthrough kube-proxy's semantics give a lab or topology file (exit 2 when nothing in it can be reached). */
export function derivedWalkthrough(ref: string, overrides: Record<string, string> = {}): DerivedWalkthrough & { lab: string; topologyPath: string } {
  const { topology, path } = topologyOf(ref, overrides);
  return { ...deriveWalkthrough(topology, path), lab: topology.lab, topologyPath: path };
}

/** The derived walkthrough as a file a user can edit and name in the topology (`walkthrough:`). */
export function derivedWalkthroughYaml(d: DerivedWalkthrough & { lab: string; topologyPath: string }): string {
  const header = [
    `# Derived by \`lab walkthrough\` from ${displayPath(d.topologyPath)}: what kube-proxy would do with each`,
    '# Service port and way in. Edit it, save it beside the topology, and name it there',
    `# (walkthrough: ${d.lab}.walkthrough.yaml). Format: docs/walkthrough-format.md`,
    ...(d.skipped.length ? ['# Not tried:', ...d.skipped.map((s) => `#   ${s}`)] : []),
  ];
  return `${header.join('\n')}\n${stringify(d.walkthrough, { lineWidth: 0, aliasDuplicateObjects: false })}`;
}
