import { describe, expect, it } from 'vitest';
import { topologyGraph } from '../../lab/picture/graph.js';
import { layoutTopology, type Rect } from '../../lab/picture/layout.js';
import { topologySvg } from '../../lab/picture/svg.js';
import { loadTopology } from '../../lab/topology/load.js';
import { synthGraph } from './synth-graph.js';

/** The drawing's geometry, measured: nothing overlaps, every link ends on its own bridge. */

const overlap = (a: Rect, b: Rect) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
const pairs = <T>(xs: T[]) => xs.flatMap((a, i) => xs.slice(i + 1).map((b) => [a, b] as const));

const cases = [
  ['nodeport (2 nodes, routed)', topologyGraph(loadTopology('nodeport').topology)],
  ['loadbalancer (2 nodes)', topologyGraph(loadTopology('loadbalancer').topology)],
  ['2 nodes, 1 client, vxlan', synthGraph(2, 1, 'vxlan')],
  ['3 nodes, 2 clients, vxlan', synthGraph(3, 2, 'vxlan')],
  ['3 nodes, 2 clients, bgp', synthGraph(3, 2, 'bgp')],
  ['5 nodes, 3 clients, bgp', synthGraph(5, 3, 'bgp')],
  ['5 nodes, 4 clients, vxlan', synthGraph(5, 4, 'vxlan')],
] as const;

describe.each(cases)('layout of %s', (_name, g) => {
  const l = layoutTopology(g);
  const labels = [...l.links.flatMap((k) => k.labels), ...l.legend];
  it('draws every host and every link', () => {
    expect(l.hosts.map((h) => h.name).sort()).toEqual([...g.hosts.map((h) => h.name), ...g.services.map((s) => `Service ${s.name}`)].sort());
    expect(l.links).toHaveLength(g.links.length);
    expect(l.overlays).toHaveLength(g.overlays.length);
  });
  it('no two boxes overlap, and all lie inside the picture', () => {
    expect(pairs(l.hosts).filter(([a, b]) => overlap(a, b)).map(([a, b]) => `${a.name}/${b.name}`)).toEqual([]);
    for (const h of l.hosts) expect(h.x >= 0 && h.y >= 0 && h.x + h.w <= l.width && h.y + h.h <= l.height, h.name).toBe(true);
  });
  it('no label overlaps another label or a box', () => {
    expect(pairs(labels).filter(([a, b]) => overlap(a, b)).map(([a, b]) => `${a.text}/${b.text}`)).toEqual([]);
    expect(labels.flatMap((t) => l.hosts.filter((h) => overlap(t, h)).map((h) => `${t.text} on ${h.name}`))).toEqual([]);
  });
  it('every link starts on its host and ends on the bridge it plugs into, apart from the others', () => {
    for (const k of l.links) {
      const host = l.hosts.find((h) => h.name === k.link.host)!;
      const peer = l.hosts.find((h) => h.name === k.link.peerHost)!;
      const bar = peer.bars.find((b) => b.name === k.link.bridge)!;
      expect(k.bar).toBe(bar);
      const [sx, sy] = k.points[0]!;
      const [ex, ey] = k.points.at(-1)!;
      expect(sx > host.x && sx < host.x + host.w && (sy === host.y || sy === host.y + host.h), k.id).toBe(true);
      expect(ex > bar.x && ex < bar.x + bar.w && (ey === bar.y || ey === bar.y + bar.h), k.id).toBe(true);
      // Orthogonal: each segment is horizontal or vertical.
      for (const [[x1, y1], [x2, y2]] of k.points.slice(1).map((p, i) => [k.points[i]!, p] as const)) expect(x1 === x2 || y1 === y2).toBe(true);
    }
    const ends = l.links.map((k) => `${k.bar.name}@${k.link.peerHost}:${k.points.at(-1)![0]}`);
    expect(new Set(ends).size).toBe(ends.length);
  });
  it('no two links share a horizontal run at the same height', () => {
    const runs = l.links.flatMap((k) => k.points.slice(1).flatMap((p, i) => (p[1] === k.points[i]![1] ? [{ id: k.id, y: p[1], a: Math.min(p[0], k.points[i]![0]), b: Math.max(p[0], k.points[i]![0]) }] : [])));
    expect(pairs(runs).filter(([r, s]) => r.y === s.y && r.a < s.b && s.a < r.b).map(([r, s]) => `${r.id}/${s.id}`)).toEqual([]);
  });
  it('the SVG carries one group per host, link and overlay', () => {
    const svg = topologySvg(g, l);
    expect(svg.match(/<g class="host /g)).toHaveLength(g.hosts.length);
    expect(svg.match(/<g class="link"/g)).toHaveLength(g.links.length);
    expect(svg.match(/<g class="overlay /g) ?? []).toHaveLength(g.overlays.length);
  });
});
