/** What a verify run returns: its own module, so the picture (lab/picture/html.ts) reads it without the engine. */
import type { PacketDrop } from '../trace/drops.js';
import type { WalkHop } from '../trace/walk.js';
import type { Flow } from './flows.js';
import type { PathResult } from './judges.js';

/** A rule trace attached to a path (lab verify --trace). */
export interface PathTrace {
  mode: string;
  flow: Flow;
  hops: WalkHop[];
  /** Where its packets died, in the kernel's words (lab trace's drop reasons). */
  drops?: PacketDrop[];
}

export interface VerifyResult {
  lab: string;
  title: string;
  seed: string;
  runDir: string;
  /** The picture of this run: report.html in runDir. */
  html: string;
  captures: Record<string, string>;
  flows: Flow[];
  paths: PathResult[];
  /** Per path name, with --trace. */
  traces?: Record<string, PathTrace>;
  passed: number;
  failed: number;
  ms: number;
}
