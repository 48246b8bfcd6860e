import type { TopologyGraph } from './graph.js';
import { BAR_H, layoutTopology, LINE_H, PAD, type LaidHost, type Layout, type TextBox } from './layout.js';

/**
 * The topology as one inline SVG: clients on top, routers with their bridges, nodes with their
 * cbr0, and each node's pods below it; veth links drawn to the bridge they plug into. Pure.
 */

export const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const text = (t: TextBox, cls: string) => `<text class="${cls}" x="${t.x}" y="${t.y + t.h - 3}">${escapeXml(t.text)}</text>`;

function hostSvg(h: LaidHost): string[] {
  const isService = h.role === 'service';
  const out = [isService ? `<g class="service">` : `<g class="host ${h.role}" data-host="${escapeXml(h.name)}" id="host-${escapeXml(h.name)}">`];
  out.push(`<rect class="ns" x="${h.x}" y="${h.y}" width="${h.w}" height="${h.h}" rx="8"/>`);
  const top = h.y + PAD + 12 + (h.bars.some((b) => b.side === 'top') ? BAR_H + 6 : 0);
  out.push(`<text class="name" x="${h.x + PAD}" y="${top}">${escapeXml(h.name)}${isService ? '' : ` <tspan class="role">${h.role}</tspan>`}</text>`);
  h.lines.forEach((line, i) => out.push(`<text class="${line.startsWith('kube-proxy rules') ? 'addr kp' : 'addr'}" x="${h.x + PAD}" y="${top + (i + 1) * LINE_H}">${escapeXml(line)}</text>`));
  for (const b of h.bars) out.push(`<rect class="bridge" data-bar="${escapeXml(`${h.name}:${b.name}`)}" x="${b.x}" y="${b.y}" width="${b.w}" height="${BAR_H}" rx="11"/><text class="bridge-label" x="${b.x + 8}" y="${b.y + 15}">${escapeXml(b.text)}</text>`);
  out.push('</g>');
  return out;
}

/** The SVG element; every host is a <g class="host" data-host="name">, every link a <g class="link" data-link="host:ifname">. */
export function topologySvg(g: TopologyGraph, l: Layout = layoutTopology(g)): string {
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" class="topology" viewBox="0 0 ${l.width} ${l.height}" width="${l.width}" height="${l.height}" role="img" aria-label="topology of lab ${escapeXml(g.lab)}">`);
  // Links and overlays first, so boxes draw over their ends.
  for (const o of l.overlays) out.push(`<g class="overlay ${o.overlay.kind}" data-overlay="${escapeXml(o.id)}"><path d="${o.d}"><title>${escapeXml(`${o.overlay.label}: ${o.overlay.a} ↔ ${o.overlay.b}`)}</title></path></g>`);
  for (const k of l.links) {
    out.push(`<g class="link" data-link="${escapeXml(k.id)}"><polyline points="${k.points.map((p) => p.join(',')).join(' ')}"/>`);
    out.push(`${k.labels.map((t) => text(t, 'veth')).join('')}</g>`);
  }
  for (const h of l.hosts) out.push(...hostSvg(h));
  for (const t of l.legend) out.push(text(t, 'legend'));
  out.push('</svg>');
  return out.join('\n');
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
svg.topology polyline { fill: none; stroke: #7d93ad; stroke-width: 2; }
svg.topology text.kp { fill: #b05a7a; }
svg.topology text.legend { fill: #c0562a; font-size: 11px; }
svg.topology g.overlay.session path { stroke: #2f7d6b; }
svg.topology text.veth { fill: #6b7785; font-size: 10px; }
svg.topology g.overlay path { fill: none; stroke: #c0562a; stroke-width: 2; stroke-dasharray: 6 4; }
svg.topology g.overlay text.overlay-label { fill: #c0562a; font-size: 11px; }
`;
