import type { Layout } from './layout.js';
import { escapeXml as esc } from './svg.js';
import type { HopDrop } from './drop.js';
import type { PlayerHop, PlayerPath } from './walk-steps.js';

/**
 * The step-through player of report.html: each path's hops as a list (readable without the
 * script), and a small inline script that walks them on the drawing: the current hop's link,
 * tunnel and namespace lit, a marker where it was seen, the hops before it dimmer. Pure.
 */

/** Where the marker of a hop goes: the end of its link on its host's side, else its namespace. */
export function markerOf(l: Layout, h: PlayerHop): [number, number] {
  const link = l.links.find((k) => k.id === h.link);
  if (link) return link.link.host === h.host ? link.points[0]! : link.points.at(-1)!;
  const box = l.hosts.find((b) => b.name === h.host);
  return box ? [Math.round(box.x + box.w / 2), box.y] : [0, 0];
}

function address(h: PlayerHop, side: 'src' | 'dst'): string {
  return `<span class="${h.changed.includes(side) ? 'changed' : ''}">${esc(h[side])}</span>`;
}

function causeHtml(h: PlayerHop): string {
  const c = h.cause;
  if (!c) return '';
  const rules = c.rules.map((r) => {
    const hits = r.packets === undefined ? '' : ` <span class="hits">${r.packets} packets${r.added !== undefined ? ` (+${r.added} in this run)` : ''}</span>`;
    return `<li><span class="chain">${esc(`${r.table} ${r.chain}`)}</span> <code>${esc(r.rule)}</code>${r.comment ? ` <span class="muted">"${esc(r.comment)}"</span>` : ''}${hits}</li>`;
  });
  const none = c.by === 'rules' && rules.length === 0 ? '<p class="muted">the rules were not recorded by this run</p>' : '';
  return `<p class="cause">${esc(c.text)}</p>${rules.length ? `<ol class="rules">${rules.join('')}</ol>` : none}`;
}

function dropHtml(d: HopDrop): string {
  const where = `${d.after ? `dropped after this hop, in <b>${esc(d.host)}</b>` : 'dropped here'}${d.netns ? ` (netns ${esc(d.netns)}${d.device ? `, on ${esc(d.device)}` : ''})` : ''}`;
  const why = d.reason ? `: the kernel says <b class="reason">${esc(d.reason)}</b>${d.meaning ? ` <span class="muted">(${esc(d.meaning)})</span>` : ''}` : ': the request was last seen here and never answered (the kernel\'s drop reason was not recorded by this run)';
  return `<p class="dropped">✕ ${where}${why}${d.rule ? `<br/>by <code class="drop-rule">${esc(d.rule)}</code>` : ''}</p>`;
}

/** One hop as a card: where, the headers as captured, and what changed them. */
export function hopCard(pathIndex: number, h: PlayerHop, i: number, current: boolean): string {
  const where = `<span class="n">${i + 1}</span> ${h.direction} · <b>${esc(h.host)}</b> · ${esc(h.ifname)} · ${{ in: 'in', out: 'out', across: 'across the bridge' }[h.way]}`;
  const outer = h.outer ? `<div class="outer mono">outer: ${esc(h.outer.text)}</div><div class="mono muted">inner:</div>` : '';
  const conntrack = h.conntrack ? `<p class="ct">conntrack on ${esc(h.host)}: <code>${esc(h.conntrack)}</code></p>` : '';
  const drop = h.drop ? dropHtml(h.drop) : '';
  return `<li id="hop-${pathIndex}-${i}" class="hop-card ${h.direction}${h.drop ? ' has-drop' : ''}" data-hop="${i}"${current ? ' aria-current="step"' : ''}><div class="where">${where}</div>${outer}<div class="hdr mono">${address(h, 'src')} &gt; ${address(h, 'dst')} [${esc(h.flags)}]</div><div class="detail">${causeHtml(h)}${conntrack}${drop}</div></li>`;
}

export function walkList(pathIndex: number, p: PlayerPath): string {
  if (p.hops.length === 0) return '<p class="muted">No packet of this path was captured.</p>';
  return `<ol class="walk" data-path-index="${pathIndex}">${p.hops.map((h, i) => hopCard(pathIndex, h, i, pathIndex === 0 && i === 0)).join('')}</ol>`;
}

/** The player's controls and panel, above the drawing; the data its script walks. */
export function playerControls(paths: PlayerPath[], l: Layout): string {
  const data = { paths: paths.map((p) => ({ name: p.name, hops: p.hops.map((h) => ({ host: h.host, link: h.link, overlay: h.overlay, way: h.way, at: markerOf(l, h), ...(h.drop ? { drop: h.drop.reason ?? 'no answer' } : {}) })) })) };
  const tabs = paths.map((p, i) => `<button type="button" class="path-tab" data-path-index="${i}" aria-pressed="${i === 0}">${esc(p.name)}</button>`).join('');
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<div class="player" aria-label="step through each path">
<div class="controls"><span class="tabs">${tabs}</span> <button type="button" id="prev" aria-label="previous hop">◀ prev</button> <button type="button" id="next" aria-label="next hop">next ▶</button> <span id="counter" aria-live="polite"></span> <span class="muted">(← → keys)</span></div>
<div id="panel" class="panel"></div></div>
<script type="application/json" id="walk-data">${json}</script>`;
}

export const PLAYER_SCRIPT = `
(() => {
  const data = JSON.parse(document.getElementById('walk-data').textContent);
  const svg = document.querySelector('svg.topology');
  if (!svg || data.paths.length === 0) return;
  const ns = svg.namespaceURI;
  const marker = document.createElementNS(ns, 'circle');
  marker.setAttribute('id', 'hop-marker');
  marker.setAttribute('r', '8');
  const label = document.createElementNS(ns, 'text');
  label.setAttribute('id', 'hop-label');
  svg.appendChild(marker);
  svg.appendChild(label);
  const panel = document.getElementById('panel');
  const counter = document.getElementById('counter');
  let p = 0, i = 0;
  const lit = (h, cls) => {
    const sel = ['[data-host="' + h.host + '"]'];
    if (h.link) sel.push('[data-link="' + h.link + '"]');
    if (h.overlay) sel.push('[data-overlay="' + h.overlay + '"]');
    for (const e of svg.querySelectorAll(sel.join(','))) e.classList.add(cls);
  };
  const show = () => {
    const path = data.paths[p];
    for (const e of svg.querySelectorAll('.here, .visited, .on-path')) e.classList.remove('here', 'visited', 'on-path');
    for (const e of document.querySelectorAll('[aria-current="step"]')) e.removeAttribute('aria-current');
    for (const t of document.querySelectorAll('.path-tab')) t.setAttribute('aria-pressed', String(Number(t.dataset.pathIndex) === p));
    path.hops.forEach((h, j) => lit(h, j < i ? 'visited' : j === i ? 'here' : 'on-path'));
    const hop = path.hops[i];
    if (!hop) { panel.textContent = 'No packet of this path was captured.'; counter.textContent = path.name; marker.style.display = label.style.display = 'none'; return; }
    marker.style.display = label.style.display = '';
    marker.setAttribute('cx', hop.at[0]);
    marker.setAttribute('cy', hop.at[1]);
    label.setAttribute('x', hop.at[0] + 11);
    label.setAttribute('y', hop.at[1] - 9);
    label.textContent = (i + 1) + ' ' + hop.way + (hop.drop ? ' ✕ ' + hop.drop : '');
    marker.classList.toggle('dropped', Boolean(hop.drop));
    label.classList.toggle('dropped', Boolean(hop.drop));
    const card = document.getElementById('hop-' + p + '-' + i);
    card.setAttribute('aria-current', 'step');
    panel.innerHTML = card.innerHTML;
    counter.textContent = path.name + ': hop ' + (i + 1) + ' of ' + path.hops.length;
  };
  const go = (np, ni) => { p = np; i = ni; show(); };
  const step = (d) => {
    const n = data.paths[p].hops.length;
    if (i + d >= 0 && i + d < n) return go(p, i + d);
    if (d > 0 && p + 1 < data.paths.length) return go(p + 1, 0);
    if (d < 0 && p > 0) return go(p - 1, Math.max(0, data.paths[p - 1].hops.length - 1));
  };
  document.getElementById('next').addEventListener('click', () => step(1));
  document.getElementById('prev').addEventListener('click', () => step(-1));
  for (const t of document.querySelectorAll('.path-tab')) t.addEventListener('click', () => go(Number(t.dataset.pathIndex), 0));
  for (const a of document.querySelectorAll('a[data-hop]')) a.addEventListener('click', (e) => {
    e.preventDefault();
    go(Number(a.dataset.pathIndex), Number(a.dataset.hop));
    document.querySelector('.player').scrollIntoView({ block: 'start' });
  });
  document.addEventListener('keydown', (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === 'ArrowRight' || e.key === 'ArrowDown') { e.preventDefault(); step(1); }
    if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') { e.preventDefault(); step(-1); }
  });
  show();
})();
`;

export const PLAYER_STYLE = `
.player { position: sticky; top: 0; background: #fff; z-index: 2; padding: 6px 0; border-bottom: 1px solid #e6eaef; }
.controls button { font: inherit; padding: 3px 10px; border: 1px solid #9fb0c3; border-radius: 5px; background: #f0f4f8; cursor: pointer; }
.controls button[aria-pressed="true"] { background: #1d2733; color: #fff; }
.panel { min-height: 76px; margin-top: 6px; border: 2px solid #e07b00; border-radius: 6px; padding: 6px 10px; background: #fffaf2; }
.where .n { display: inline-block; min-width: 1.6em; font-weight: 700; color: #e07b00; }
ol.walk { list-style: none; padding: 0; margin: 4px 0 10px; display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 6px; }
.hop-card { border: 1px solid #c8d3df; border-radius: 6px; padding: 4px 8px; background: #fbfcfd; font-size: 13px; }
.hop-card.reply { background: #f6fbf7; }
.hop-card[aria-current="step"] { border: 2px solid #e07b00; }
.hdr .changed, .panel .changed { background: #ffd966; border-radius: 3px; padding: 0 2px; font-weight: 700; }
.outer { font-size: 11px; color: #c0562a; }
.cause { margin: 4px 0 2px; color: #8a5a00; font-weight: 600; }
ol.rules { margin: 0 0 4px; padding-left: 18px; font-size: 12px; }
ol.rules .chain { color: #56616d; } .hits { color: #1a7f37; white-space: nowrap; }
.ct { font-size: 12px; margin: 2px 0; } .dropped { color: #cf222e; margin: 2px 0; }
svg.topology .here rect.ns, svg.topology .visited rect.ns { stroke: #e07b00; stroke-width: 2.5; }
svg.topology .on-path rect.ns { stroke-dasharray: 4 2; }
svg.topology g.link.on-path polyline, svg.topology g.overlay.on-path path { stroke: #f2c38b; stroke-width: 3; }
svg.topology g.link.visited polyline, svg.topology g.overlay.visited path { stroke: #e9a24c; stroke-width: 3.5; }
svg.topology g.link.here polyline, svg.topology g.overlay.here path { stroke: #d35f00; stroke-width: 5; }
svg.topology #hop-label { fill: #d35f00; font-weight: 700; font-size: 13px; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg.topology #hop-marker { fill: #d35f00; stroke: #fff; stroke-width: 2; }
svg.topology #hop-marker.dropped { fill: #cf222e; r: 10; } svg.topology #hop-label.dropped { fill: #cf222e; }
.hop-card.has-drop { border-color: #cf222e; } .dropped .reason { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
`;
