import { loadTopology } from '../topology/load.js';
import { displayPath } from '../topology/paths.js';
import { deriveWalkthrough } from '../verify/derive/index.js';
import { loadWalkthrough } from '../verify/walkthrough.js';

export interface CheckResult {
  file: string;
  lab: string;
  counts: { nodes: number; clients: number; pods: number; services: number };
  /** The walkthrough file the topology names, checked too; or the derived one's path count. */
  walkthrough: { file: string; paths: number } | { derived: true; paths: number; skipped: string[] };
}

/**
 * Validate a topology (and the walkthrough it names, or the one `lab verify` would derive)
 * without root and without creating anything: what `lab up` would refuse, refused here (exit 2).
 */
export function checkTopologyFile(ref: string, overrides: Record<string, string> = {}): CheckResult {
  const { topology: t, path } = loadTopology(ref, overrides);
  const counts = { nodes: t.nodes.length, clients: t.clients.length, pods: t.pods.length, services: t.services.length };
  if (t.walkthrough) {
    const w = loadWalkthrough(t, path);
    return { file: displayPath(path), lab: t.lab, counts, walkthrough: { file: displayPath(w.path), paths: w.walkthrough.paths.length } };
  }
  const d = deriveWalkthrough(t, path);
  return { file: displayPath(path), lab: t.lab, counts, walkthrough: { derived: true, paths: d.walkthrough.paths.length, skipped: d.skipped } };
}
