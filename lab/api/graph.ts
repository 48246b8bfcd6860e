import { ExitCode, LabError } from '../errors.js';
import { graphDot, graphMermaid, topologyGraph } from '../picture/graph.js';
import { standaloneSvg } from '../picture/svg.js';
import { readState } from '../state/store.js';
import { loadTopology } from '../topology/load.js';
import { isLabName } from '../topology/names.js';
import { runningLab } from './running.js';

export const GRAPH_FORMATS = ['svg', 'mermaid', 'dot'] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

/**
 * The topology picture of a running lab (as it runs now, after scale/kill) or of a scenario
 * or topology file (nothing needs to be up).
 */
export function graph(ref: string, format: GraphFormat = 'svg'): string {
  if (!GRAPH_FORMATS.includes(format)) throw new LabError(`--format ${format}: expected one of ${GRAPH_FORMATS.join(', ')}`, ExitCode.badInput);
  const state = isLabName(ref) ? readState(ref) : undefined;
  const topology = state?.phase === 'up' ? runningLab(ref).topology : loadTopology(ref).topology;
  const g = topologyGraph(topology);
  return format === 'mermaid' ? graphMermaid(g) : format === 'dot' ? graphDot(g) : `${standaloneSvg(g)}\n`;
}
