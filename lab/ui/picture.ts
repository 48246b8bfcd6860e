import { topologyGraph } from '../picture/graph.js';
import { SVG_STYLE, topologySvg } from '../picture/svg.js';
import { HOST_IFNAME } from '../topology/names.js';
import type { Topology } from '../topology/schema.js';

/**
 * The one seam between the live page and a topology drawing: the page needs an inline SVG whose
 * host boxes carry `data-host="<name>"` (it marks pods ready or not, and the hops of a walk, by
 * that attribute), and the CSS that styles it. Today it is lab/picture's drawing; another drawing
 * replaces it here, and only here.
 */
export interface LabPicture {
  svg: string;
  css: string;
}

export function labPicture(t: Topology): LabPicture {
  return { svg: topologySvg(topologyGraph(t)), css: SVG_STYLE };
}

/** The interfaces a live capture listens on: every namespace's eth0 (routers have none) and every bridge. */
export function capturePoints(t: Topology): string[] {
  const g = topologyGraph(t);
  return g.hosts.flatMap((h) => [...(h.role === 'router' ? [] : [`${h.name}:${HOST_IFNAME}`]), ...h.bridges.map((b) => `${h.name}:${b.name}`)]);
}
