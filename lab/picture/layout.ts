import type { DrawnLink } from '../plan/pod-network/index.js';
import type { GraphHost, GraphLink, TopologyGraph } from './graph.js';

/**
 * Where everything of the topology picture goes, as plain rectangles and points: clients on
 * top, routers (and the Services) below them, nodes, then each node's pods. A bridge is a bar
 * on the side of its namespace that faces what plugs into it; every veth link runs
 * orthogonally from its namespace's edge to its own point on that bar, in a channel of its own,
 * and its two names sit beside its two ends, spaced so that no two labels meet. Pure; the SVG is
 * drawn from it and the unit tests measure it.
 */

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface TextBox extends Rect {
  text: string;
}

export interface LaidBar extends Rect {
  name: string;
  text: string;
  side: 'top' | 'bottom';
}

export interface LaidHost extends Rect {
  name: string;
  role: string;
  /** The lines under the name: interfaces, routes, the kube-proxy rules, BGP sessions. */
  lines: string[];
  bars: LaidBar[];
}

export interface LaidLink {
  link: GraphLink;
  /** data-link: the plugged-in end, host:ifname. */
  id: string;
  /** From the host's edge to the bar's edge. */
  points: [number, number][];
  bar: LaidBar;
  labels: TextBox[];
}

export interface LaidOverlay {
  overlay: DrawnLink;
  id: string;
  d: string;
}

export interface Layout {
  width: number;
  height: number;
  hosts: LaidHost[];
  links: LaidLink[];
  overlays: LaidOverlay[];
  legend: TextBox[];
}

export const CHAR_W = 7.2;
export const LABEL_CHAR_W = 6.1;
export const LINE_H = 16;
export const PAD = 10;
export const BAR_H = 22;
export const LABEL_H = 13;
const GAP_X = 32;
const CHANNEL = 9;
const MIN_BOX_W = 160;

const textW = (s: string, cw = CHAR_W) => Math.ceil(s.length * cw);
const barText = (b: { name: string; address: string }) => `${b.name} ${b.address}`;

/** The hosts as the picture lists them: Services become boxes, nodes list the kube-proxy rules and BGP sessions they hold. */
function boxesOf(g: TopologyGraph): { name: string; role: string; lines: string[]; bridges: { name: string; address: string }[]; node?: string }[] {
  const services = g.services.map((s) => s.name);
  const sessions = (h: GraphHost) => g.overlays.filter((o) => o.kind === 'session' && (o.b === h.name || o.a === h.name)).map((o) => `${o.label} with ${o.a === h.name ? o.b : o.a}`);
  const hosts = g.hosts.map((h) => ({
    name: h.name,
    role: h.role,
    lines: [...h.interfaces, ...(h.role === 'node' && services.length ? [`kube-proxy rules: ${services.join(', ')}`] : []), ...(h.role === 'node' ? sessions(h) : [])],
    bridges: h.bridges,
    node: h.node,
  }));
  const svc = g.services.map((s) => ({ name: `Service ${s.name}`, role: 'service', lines: [`${s.type}: rules on every node`, ...s.lines], bridges: [] }));
  return [...hosts, ...svc];
}

/** Which side of its namespace a bridge sits on: toward the hosts that plug into it (clients above a router, everything else below). */
function barSide(g: TopologyGraph, host: string, bridge: string): 'top' | 'bottom' {
  const plugged = g.links.filter((l) => l.peerHost === host && l.bridge === bridge);
  const above = plugged.filter((l) => g.hosts.find((h) => h.name === l.host)?.role === 'client').length;
  return above > plugged.length - above ? 'top' : 'bottom';
}

/** The room each attachment on a bar needs: its label and a margin. */
const spacingOf = (links: GraphLink[]) => Math.max(0, ...links.map((l) => textW(l.peer, LABEL_CHAR_W))) + 14;

function sizeHosts(g: TopologyGraph): LaidHost[] {
  return boxesOf(g).map((b) => {
    const bars: LaidBar[] = b.bridges.map((br) => {
      const plugged = g.links.filter((l) => l.peerHost === b.name && l.bridge === br.name);
      const w = Math.max(textW(barText(br), 6.6) + 16, plugged.length * spacingOf(plugged) + 16);
      return { name: br.name, text: barText(br), side: barSide(g, b.name, br.name), x: 0, y: 0, w, h: BAR_H };
    });
    const sideW = (side: string) => bars.filter((x) => x.side === side).reduce((w, x) => w + x.w + 8, -8);
    const w = Math.max(MIN_BOX_W, textW(`${b.name} (${b.role})`) + 2 * PAD, ...b.lines.map((l) => textW(l) + 2 * PAD), sideW('top') + 2 * PAD, sideW('bottom') + 2 * PAD);
    const has = (side: string) => (bars.some((x) => x.side === side) ? BAR_H + 6 : 0);
    const h = PAD + (1 + b.lines.length) * LINE_H + has('top') + has('bottom') + PAD;
    return { name: b.name, role: b.role, lines: b.lines, bars, x: 0, y: 0, w: Math.ceil(w), h, ...(b.node ? { node: b.node } : {}) } as LaidHost;
  });
}

/** Put a host at (x, y) with the row's height, its bars on their edges. */
function place(h: LaidHost, x: number, y: number, rowH: number): void {
  Object.assign(h, { x, y, h: rowH });
  for (const side of ['top', 'bottom'] as const) {
    let bx = x + PAD;
    for (const b of h.bars.filter((z) => z.side === side)) {
      Object.assign(b, { x: bx, y: side === 'top' ? y + 4 : y + rowH - 4 - BAR_H });
      bx += b.w + 8;
    }
  }
}

interface Rows {
  rows: LaidHost[][];
  width: number;
}

/** The four rows, each host's x: rows centred, each node's column as wide as it or its pods. */
function columns(hosts: LaidHost[], g: TopologyGraph): Rows {
  const of = (...roles: string[]) => hosts.filter((h) => roles.includes(h.role));
  const nodes = of('node');
  const podsOf = (n: string) => hosts.filter((h) => h.role === 'pod' && g.hosts.find((x) => x.name === h.name)?.node === n);
  const rowW = (ws: number[]) => ws.reduce((a, w) => a + w + GAP_X, -GAP_X);
  const colW = (n: LaidHost) => Math.max(n.w, rowW(podsOf(n.name).map((p) => p.w)));
  const width = Math.max(300, rowW(of('client').map((h) => h.w)), rowW(of('router', 'service').map((h) => h.w)), rowW(nodes.map(colW))) + 2 * GAP_X;
  const spread = (hs: LaidHost[], ws: number[]) => {
    let x = (width - rowW(ws)) / 2;
    return hs.map((h, i) => {
      const at = x;
      x += ws[i]! + GAP_X;
      return at;
    });
  };
  for (const row of [of('client'), of('router', 'service')]) spread(row, row.map((h) => h.w)).forEach((x, i) => (row[i]!.x = x));
  const pods: LaidHost[] = [];
  spread(nodes, nodes.map(colW)).forEach((cx, i) => {
    const n = nodes[i]!;
    n.x = cx + (colW(n) - n.w) / 2;
    const mine = podsOf(n.name);
    let px = cx + (colW(n) - rowW(mine.map((p) => p.w))) / 2;
    for (const p of mine) {
      p.x = px;
      px += p.w + GAP_X;
      pods.push(p);
    }
  });
  return { rows: [of('client'), of('router', 'service'), nodes, pods], width };
}

/** Each link's point on its bar: as close above or below its host as the bar allows, in the hosts' order, a label's room apart. */
function attachPoints(links: GraphLink[], hostOf: (n: string) => LaidHost, bar: LaidBar): Map<GraphLink, number> {
  const space = spacingOf(links);
  const sorted = [...links].sort((a, b) => hostOf(a.host).x - hostOf(b.host).x);
  const lo = bar.x + 8;
  const hi = bar.x + bar.w - space + 6;
  const xs = sorted.map((l) => Math.min(hi, Math.max(lo, hostOf(l.host).x + hostOf(l.host).w / 2)));
  for (let i = 1; i < xs.length; i++) xs[i] = Math.max(xs[i]!, xs[i - 1]! + space);
  for (let i = xs.length - 1; i >= 0; i--) xs[i] = Math.min(xs[i]!, i + 1 < xs.length ? xs[i + 1]! - space : hi);
  return new Map(sorted.map((l, i) => [l, Math.round(xs[i]!)]));
}

/**
 * The links of one band (between two rows): their attachment points and channels. Links going
 * right take channels nearer the bar the further left their host is (and the mirror for links
 * going left), so no two cross.
 */
function bandLinks(links: GraphLink[], hostOf: (n: string) => LaidHost): { link: GraphLink; hx: number; ax: number; bar: LaidBar; channel: number }[] {
  const attach = new Map<GraphLink, number>();
  const bars = new Map<LaidBar, GraphLink[]>();
  for (const l of links) {
    const bar = hostOf(l.peerHost).bars.find((b) => b.name === l.bridge)!;
    bars.set(bar, [...(bars.get(bar) ?? []), l]);
  }
  for (const [bar, ls] of bars) for (const [l, x] of attachPoints(ls, hostOf, bar)) attach.set(l, x);
  const out = links.map((l) => {
    const h = hostOf(l.host);
    return { link: l, hx: Math.round(h.x + h.w / 2), ax: attach.get(l)!, bar: hostOf(l.peerHost).bars.find((b) => b.name === l.bridge)!, channel: 0 };
  });
  const right = out.filter((o) => o.ax > o.hx).sort((a, b) => a.hx - b.hx);
  const left = out.filter((o) => o.ax < o.hx).sort((a, b) => b.hx - a.hx);
  right.forEach((o, i) => (o.channel = i));
  left.forEach((o, i) => (o.channel = i));
  return out;
}

const bandHeight = (channels: number) => 2 * (LABEL_H + 6) + Math.max(1, channels) * CHANNEL + 12;

/** The rows' y, given the bands between them (which need the hosts' x first). */
function stack(rows: LaidHost[][], bands: ReturnType<typeof bandLinks>[]): number {
  let y = 24;
  rows.forEach((row, i) => {
    if (row.length === 0) return;
    const rowH = Math.max(...row.map((h) => h.h));
    for (const h of row) place(h, h.x, y, rowH);
    const band = bands[i] ?? [];
    y += rowH + bandHeight(Math.max(0, ...band.map((b) => b.channel + 1)));
  });
  return y;
}

function routeLink(b: ReturnType<typeof bandLinks>[number], host: LaidHost): LaidLink {
  const down = b.bar.side === 'top'; // the host is above the bar: the link runs down to it
  const hy = down ? host.y + host.h : host.y;
  const by = down ? b.bar.y : b.bar.y + b.bar.h;
  const dir = down ? 1 : -1;
  // Channels count from the bar: channel 0 is nearest it.
  const cy = by - dir * (LABEL_H + 11 + b.channel * CHANNEL + CHANNEL / 2);
  const points: [number, number][] = b.hx === b.ax ? [[b.hx, hy], [b.ax, by]] : [[b.hx, hy], [b.hx, cy], [b.ax, cy], [b.ax, by]];
  const hostLabel = { text: b.link.ifname, x: b.hx + 4, y: down ? hy + 2 : hy - 2 - LABEL_H, w: textW(b.link.ifname, LABEL_CHAR_W), h: LABEL_H };
  const barLabel = { text: b.link.peer, x: b.ax + 4, y: down ? by - 5 - LABEL_H : by + 5, w: textW(b.link.peer, LABEL_CHAR_W), h: LABEL_H };
  return { link: b.link, id: `${b.link.host}:${b.link.ifname}`, points, bar: b.bar, labels: [hostLabel, barLabel] };
}

/**
 * The pod network's overlays. A VXLAN tunnel joins two nodes' sides at mid-height (neighbours
 * straight across the gap, others in an arc below, deeper the further apart); a BGP session runs
 * beside its node's link to the router. Their names go once each into the legend.
 */
function overlays(g: TopologyGraph, hostOf: (n: string) => LaidHost, links: LaidLink[]): LaidOverlay[] {
  const nodes = g.hosts.filter((h) => h.role === 'node').map((h) => h.name);
  return g.overlays.flatMap((o, i) => {
    const id = `${o.a}-${o.b}`;
    if (o.kind === 'session') {
      const node = nodes.includes(o.b) ? o.b : o.a;
      const link = links.find((l) => l.link.host === node && l.link.peerHost === (node === o.b ? o.a : o.b));
      if (!link) return [];
      const d = link.points.map(([x, y], j) => `${j ? 'L' : 'M'} ${x - 6} ${y}`).join(' ');
      return [{ overlay: o, id, d }];
    }
    const [a, b] = [hostOf(o.a), hostOf(o.b)].sort((p, q) => p.x - q.x) as [LaidHost, LaidHost];
    const apart = Math.abs(nodes.indexOf(o.a) - nodes.indexOf(o.b));
    const y = a.y + a.h / 2 + (i % 3) * 4;
    const [x1, x2] = [a.x + a.w, b.x];
    if (apart <= 1) return [{ overlay: o, id, d: `M ${x1} ${y} L ${x2} ${y}` }];
    const depth = a.h / 2 + 16 + 10 * apart;
    return [{ overlay: o, id, d: `M ${x1} ${y} C ${x1 + 30} ${y + depth}, ${x2 - 30} ${y + depth}, ${x2} ${y}` }];
  });
}

export function layoutTopology(g: TopologyGraph): Layout {
  const hosts = sizeHosts(g);
  const byName = new Map(hosts.map((h) => [h.name, h]));
  const hostOf = (n: string) => byName.get(n)!;
  const { rows, width } = columns(hosts, g);
  for (const h of hosts) place(h, h.x, 0, h.h); // the bars' x, which the attachment points need
  const rowOf = (n: string) => rows.findIndex((r) => r.some((h) => h.name === n));
  // A band holds the links between row i and row i+1, whichever end is the bar.
  const bandOf = (l: GraphLink) => Math.min(rowOf(l.host), rowOf(l.peerHost));
  const valid = g.links.filter((l) => byName.has(l.host) && byName.get(l.peerHost)?.bars.some((b) => b.name === l.bridge));
  const bands = rows.map((_, i) => bandLinks(valid.filter((l) => bandOf(l) === i), hostOf));
  let bottom = stack(rows, bands);
  const links = bands.flat().map((b) => routeLink(b, hostOf(b.link.host)));
  const laid = overlays(g, hostOf, links);
  const deepest = Math.max(0, ...laid.map((o) => Math.max(...[...o.d.matchAll(/(-?[\d.]+) (-?[\d.]+)/g)].map((m) => Number(m[2])))));
  bottom = Math.max(bottom, deepest + 20);
  const names = [...new Set(g.overlays.map((o) => (o.kind === 'tunnel' ? `- - tunnel between every two nodes: ${o.label}` : `- - BGP sessions: ${o.label.replace(/ ↔ AS\d+$/, '')} with each node`)))];
  const legend = names.map((text, i) => ({ text, x: GAP_X, y: bottom - 12 + i * (LABEL_H + 4), w: textW(text, LABEL_CHAR_W), h: LABEL_H }));
  const height = bottom + legend.length * (LABEL_H + 4) + 8;
  return { width: Math.ceil(Math.max(width, ...legend.map((t) => t.x + t.w + GAP_X))), height: Math.ceil(height), hosts, links, overlays: laid, legend };
}
