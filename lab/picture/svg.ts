import type { GraphHost, TopologyGraph } from './graph.js';

/**
 * The topology as one inline SVG: clients on top, routers with their bridges, nodes with their
 * cbr0, and each node's pods below it; veth links drawn to the bridge they plug into. Pure.
 */

const CHAR_W = 7.2;
const LINE_H = 16;
const PAD = 10;
const GAP_X = 28;
const GAP_Y = 56;
const BAR_H = 22;

export const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

interface Box {
  host: GraphHost;
  x: number;
  y: number;
  w: number;
  h: number;
  /** Bridge bars inside the box: name → its rectangle. */
  bars: Map<string, { x: number; y: number; w: number }>;
}

function measure(h: GraphHost): { w: number; h: number } {
  const lines = [`${h.name} (${h.role})`, ...h.interfaces];
  const barText = h.bridges.map((b) => `${b.name} ${b.address}`);
  const barsW = barText.reduce((w, t) => w + t.length * CHAR_W + 16 + 8, 0);
  const w = Math.max(150, ...lines.map((l) => l.length * CHAR_W + 2 * PAD), barsW + 2 * PAD - 8);
  const height = PAD + lines.length * LINE_H + (h.bridges.length ? BAR_H + 8 : 0) + PAD;
  return { w: Math.ceil(w), h: height };
}

/** Services are drawn as boxes too (beside the clients), with their addresses and ports. */
const serviceBoxes = (g: TopologyGraph): GraphHost[] => g.services.map((s) => ({ name: `Service ${s.name}`, role: 'service' as GraphHost['role'], interfaces: [s.type, ...s.lines], bridges: [] }));

function layout(g: TopologyGraph): { boxes: Map<string, Box>; width: number; height: number } {
  const boxes = new Map<string, Box>();
  const all = [...g.hosts, ...serviceBoxes(g)];
  const size = new Map(all.map((h) => [h.name, measure(h)]));
  const role = (r: string) => (r === 'client' ? all.filter((h) => h.role === 'client' || (h.role as string) === 'service') : all.filter((h) => h.role === r));
  const nodes = role('node');
  const podsOf = (node: string) => g.hosts.filter((h) => h.role === 'pod' && h.node === node);
  // Each node's column is as wide as the node or its pods side by side, whichever is wider.
  const columnW = (n: GraphHost) => Math.max(size.get(n.name)!.w, podsOf(n.name).reduce((w, p) => w + size.get(p.name)!.w + GAP_X, -GAP_X));
  const rowW = (hs: GraphHost[], w: (h: GraphHost) => number) => hs.reduce((acc, h) => acc + w(h) + GAP_X, -GAP_X);
  const width = Math.max(rowW(role('client'), (h) => size.get(h.name)!.w), rowW(role('router'), (h) => size.get(h.name)!.w), rowW(nodes, columnW), 300) + 2 * GAP_X;
  let y = GAP_X;
  const placeRow = (hs: GraphHost[], w: (h: GraphHost) => number, put: (h: GraphHost, x: number, cw: number) => void) => {
    if (hs.length === 0) return;
    let x = (width - rowW(hs, w)) / 2;
    for (const h of hs) {
      put(h, x, w(h));
      x += w(h) + GAP_X;
    }
  };
  const place = (h: GraphHost, x: number, yy: number) => {
    const s = size.get(h.name)!;
    const box: Box = { host: h, x, y: yy, w: s.w, h: s.h, bars: new Map() };
    let bx = x + PAD;
    for (const b of h.bridges) {
      const bw = `${b.name} ${b.address}`.length * CHAR_W + 16;
      box.bars.set(b.name, { x: bx, y: yy + s.h - PAD - BAR_H, w: bw });
      bx += bw + 8;
    }
    boxes.set(h.name, box);
  };
  for (const r of ['client', 'router'] as const) {
    const hs = role(r);
    placeRow(hs, (h) => size.get(h.name)!.w, (h, x) => place(h, x, y));
    if (hs.length) y += Math.max(...hs.map((h) => size.get(h.name)!.h)) + GAP_Y;
  }
  const nodeRowH = nodes.length ? Math.max(...nodes.map((h) => size.get(h.name)!.h)) : 0;
  placeRow(nodes, columnW, (n, x, cw) => {
    place(n, x + (cw - size.get(n.name)!.w) / 2, y);
    const pods = podsOf(n.name);
    let px = x + (cw - rowW(pods, (p) => size.get(p.name)!.w)) / 2;
    for (const p of pods) {
      place(p, px, y + nodeRowH + GAP_Y);
      px += size.get(p.name)!.w + GAP_X;
    }
  });
  const bottom = Math.max(...[...boxes.values()].map((b) => b.y + b.h));
  return { boxes, width, height: bottom + GAP_X };
}

/** The SVG element; every host is a <g class="host" data-host="name">. */
export function topologySvg(g: TopologyGraph): string {
  const { boxes, width, height } = layout(g);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" class="topology" viewBox="0 0 ${Math.ceil(width)} ${Math.ceil(height)}" width="${Math.ceil(width)}" height="${Math.ceil(height)}" role="img" aria-label="topology of lab ${escapeXml(g.lab)}">`);
  // Links first, so boxes draw over their ends.
  for (const l of g.links) {
    const a = boxes.get(l.host);
    const b = boxes.get(l.peerHost);
    const bar = b?.bars.get(l.bridge);
    if (!a || !b || !bar) continue;
    const ax = a.x + a.w / 2;
    const below = a.y > b.y;
    const ay = below ? a.y : a.y + a.h;
    const bx = Math.min(Math.max(ax, bar.x + 12), bar.x + bar.w - 12);
    const by = below ? bar.y + BAR_H : bar.y;
    out.push(`<g class="link" data-link="${escapeXml(`${l.host}:${l.ifname}`)}"><line x1="${ax}" y1="${ay}" x2="${bx}" y2="${by}"/>`);
    const mx = (ax + bx) / 2;
    const my = (ay + by) / 2;
    out.push(`<text class="veth" x="${mx + 6}" y="${my}">${escapeXml(`${l.ifname} ↔ ${l.peer}`)}</text></g>`);
  }
  out.push(...overlaySvg(g, boxes));
  for (const box of boxes.values()) {
    const h = box.host;
    const isService = (h.role as string) === 'service';
    out.push(isService ? `<g class="service">` : `<g class="host ${h.role}" data-host="${escapeXml(h.name)}" id="host-${escapeXml(h.name)}">`);
    out.push(`<rect class="ns" x="${box.x}" y="${box.y}" width="${box.w}" height="${box.h}" rx="8"/>`);
    out.push(`<text class="name" x="${box.x + PAD}" y="${box.y + PAD + 12}">${escapeXml(h.name)}${isService ? '' : ` <tspan class="role">${h.role}</tspan>`}</text>`);
    h.interfaces.forEach((line, i) => out.push(`<text class="addr" x="${box.x + PAD}" y="${box.y + PAD + 12 + (i + 1) * LINE_H}">${escapeXml(line)}</text>`));
    for (const b of h.bridges) {
      const bar = box.bars.get(b.name)!;
      out.push(`<rect class="bridge" x="${bar.x}" y="${bar.y}" width="${bar.w}" height="${BAR_H}" rx="11"/><text class="bridge-label" x="${bar.x + 8}" y="${bar.y + 15}">${escapeXml(`${b.name} ${b.address}`)}</text>`);
    }
    out.push('</g>');
  }
  out.push('</svg>');
  return out.join('\n');
}

/**
 * The pod network's overlays (a VXLAN tunnel between two nodes' VTEPs, a BGP session): a dashed
 * arc over the gap between the two boxes, drawn under them, each pair bending a little further.
 */
function overlaySvg(g: TopologyGraph, boxes: Map<string, Box>): string[] {
  return g.overlays.flatMap((o, i) => {
    const [a, b] = [boxes.get(o.a), boxes.get(o.b)].sort((x, y) => (x?.x ?? 0) - (y?.x ?? 0));
    if (!a || !b) return [];
    const y = Math.min(a.y, b.y) + 14;
    const [x1, x2] = [a.x + a.w - 6, b.x + 6];
    const lift = 26 + 12 * i;
    const d = `M ${x1} ${y} C ${x1 + 20} ${y - lift}, ${x2 - 20} ${y - lift}, ${x2} ${y}`;
    return [`<g class="overlay ${o.kind}" data-overlay="${escapeXml(`${o.a}-${o.b}`)}"><path d="${d}"/><text class="overlay-label" x="${(x1 + x2) / 2}" y="${y - lift * 0.75 - 4}" text-anchor="middle">${escapeXml(o.label)}</text></g>`];
  });
}

/** The SVG on its own, as `lab graph --format svg` prints it: its styles inside. */
export function standaloneSvg(g: TopologyGraph): string {
  return topologySvg(g).replace(/^<svg([^>]*)>/, `<svg$1><style>${SVG_STYLE}</style>`);
}

export const SVG_STYLE = `
svg.topology { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
svg.topology rect.ns { fill: #fff; stroke: #5b6b7f; stroke-width: 1.5; }
svg.topology .client rect.ns { fill: #eef6ff; }
svg.topology .router rect.ns { fill: #f4f0ff; }
svg.topology .node rect.ns { fill: #eefaf0; }
svg.topology .pod rect.ns { fill: #fff8e6; }
svg.topology .service rect.ns { fill: #fdf0f4; stroke: #b05a7a; stroke-dasharray: 5 3; }
svg.topology text.name { font-weight: bold; fill: #1d2733; }
svg.topology tspan.role { font-weight: normal; fill: #6b7785; }
svg.topology text.addr { fill: #2b3a4a; }
svg.topology rect.bridge { fill: #dde7f3; stroke: #7d93ad; }
svg.topology text.bridge-label { fill: #1d2733; font-size: 11px; }
svg.topology line { stroke: #7d93ad; stroke-width: 2; }
svg.topology text.veth { fill: #6b7785; font-size: 10px; }
svg.topology g.overlay path { fill: none; stroke: #c0562a; stroke-width: 2; stroke-dasharray: 6 4; }
svg.topology g.overlay text.overlay-label { fill: #c0562a; font-size: 11px; }
`;
