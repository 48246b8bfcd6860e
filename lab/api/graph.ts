import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ExitCode, InputError, LabError } from '../errors.js';
import { graphDot, graphMermaid, topologyGraph } from '../picture/graph.js';
import { standaloneSvg } from '../picture/svg.js';
import { readState } from '../state/store.js';
import { loadTopology } from '../topology/load.js';
import { isLabName } from '../topology/names.js';
import { makeOutputDir } from '../util/output-dir.js';
import { runningLab } from './running.js';

export const GRAPH_FORMATS = ['svg', 'mermaid', 'dot'] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

/**
 * The topology picture of a running lab (as it runs now, after scale/kill) or of a scenario
 * or topology file (nothing needs to be up).
 */
export function graph(ref: string, format: GraphFormat = 'svg'): string {
  return picture(ref, format).text;
}

function picture(ref: string, format: GraphFormat): { text: string; lab: string } {
  if (!GRAPH_FORMATS.includes(format)) throw new LabError(`--format ${format}: expected one of ${GRAPH_FORMATS.join(', ')}`, ExitCode.badInput);
  const state = isLabName(ref) ? readState(ref) : undefined;
  const topology = state?.phase === 'up' ? runningLab(ref).topology : loadTopology(ref).topology;
  const g = topologyGraph(topology);
  const text = format === 'mermaid' ? graphMermaid(g) : format === 'dot' ? graphDot(g) : `${standaloneSvg(g)}\n`;
  return { text, lab: topology.lab };
}

const EXTENSION: Record<GraphFormat, string> = { svg: 'svg', mermaid: 'mmd', dot: 'dot' };

/**
 * Write the picture to a file: `out`, or lab-runs/<lab>/graph.<ext> under the current directory.
 * A symlink in the file's place is not followed (it is refused). Returns where it went.
 */
export function writeGraph(ref: string, format: GraphFormat = 'svg', out?: string): { path: string; bytes: number } {
  const { text, lab } = picture(ref, format);
  const path = resolve(out ?? join(makeOutputDir(join('lab-runs', lab)), `graph.${EXTENSION[format]}`));
  if (out !== undefined) makeOutputDir(dirname(path), '-o');
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError([{ file: out !== undefined ? `-o ${out}` : path, field: '', message: code === 'ELOOP' ? 'is a symbolic link: pick another file' : `cannot write it (${code})` }]);
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  return { path, bytes: Buffer.byteLength(text) };
}
