import { basename } from 'node:path';
import type { WalkHop } from '../trace/walk.js';
import type { VerifyResult } from '../verify/result.js';
import type { TopologyGraph } from './graph.js';
import { layoutTopology } from './layout.js';
import { PLAYER_SCRIPT, PLAYER_STYLE, playerControls, walkList } from './player.js';
import { escapeXml as esc, SVG_STYLE, topologySvg } from './svg.js';
import type { PlayerPath } from './walk-steps.js';

/**
 * report.html: one self-contained page (inline SVG, CSS and script; nothing fetched) beside a
 * verify run's pcaps: the topology drawn once with a step-through player over each path's hops,
 * the steps, the traces. Pure: the run's result, the topology graph, each path's player hops and
 * any attached traces in, a string out.
 */

export interface HtmlInput {
  result: VerifyResult;
  graph: TopologyGraph;
  /** Per path, in the result's order: its hops as the player walks them. */
  player: PlayerPath[];
  /** Per path name, when verify ran with --trace. */
  traces?: Record<string, { hops: WalkHop[]; mode: string }>;
  /** When the report was made. */
  when: string;
}

const STYLE = `
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2733; margin: 0; background: #f6f8fa; }
header, main { max-width: 1200px; margin: 0 auto; padding: 16px 24px; }
header { background: #1d2733; color: #fff; max-width: none; }
header h1 { font-size: 20px; margin: 0 0 4px; }
header p { margin: 2px 0; color: #c9d4e0; }
.summary { font-weight: 600; }
.summary.ok { color: #7ee2a0; } .summary.bad { color: #ff9a9a; }
section { background: #fff; border: 1px solid #d8dee6; border-radius: 8px; padding: 16px; margin: 16px 0; }
h2 { font-size: 17px; margin: 0 0 8px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.figure { overflow-x: auto; text-align: center; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
table.steps { border-collapse: collapse; width: 100%; }
table.steps th, table.steps td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid #e6eaef; }
table.steps th { background: #f0f3f6; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: #56616d; }
td.result { font-weight: 700; white-space: nowrap; }
tr.pass td.result { color: #1a7f37; } tr.fail td.result { color: #cf222e; } tr.na td.result { color: #8c959f; }
tr.fail { background: #fff5f5; }
td.note { color: #6e5b00; background: #fffbea; font-size: 13px; }
ol.hops { list-style: none; display: flex; flex-wrap: wrap; gap: 6px 0; padding: 0; margin: 4px 0 10px; align-items: stretch; }
ol.hops li { display: flex; align-items: center; }
ol.hops li + li::before { content: "→"; color: #7d93ad; font-size: 20px; padding: 0 6px; }
.hop { border: 1px solid #c8d3df; border-radius: 6px; padding: 4px 8px; background: #fbfcfd; }
.hop .point { font-weight: 600; font-size: 12px; color: #56616d; display: block; }
.hop .changed { background: #fff1c2; border-radius: 3px; padding: 0 2px; }
.hop .outer { display: block; font-size: 11px; color: #c0562a; }
.trace .hop-title { font-weight: 600; margin-top: 8px; }
.trace ul { margin: 2px 0 4px; padding-left: 18px; }
.trace li { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.trace .nat { color: #8a5a00; } .trace .drop { color: #cf222e; font-weight: 700; }
.trace .chain { color: #56616d; }
ul.captures { columns: 2; }
.muted { color: #6b7785; }
${SVG_STYLE}
${PLAYER_STYLE}
`;

function traceBlock(t: { hops: WalkHop[]; mode: string }): string {
  const parts = t.hops.map((h) => {
    const rules = h.hooks.flatMap((hook) =>
      hook.note
        ? [`<li class="nat">${esc(hook.hook)}: ${esc(hook.note)}</li>`]
        : [
            ...hook.rules.map((r) => `<li><span class="chain">${esc(`${r.table} ${r.chain}`)}</span> ${esc(r.rule)}${r.comment ? ` <span class="chain">"${esc(r.comment)}"</span>` : ''}${r.verdict === 'DROP' ? ' <span class="drop">DROP</span>' : ''}${r.nat ? `<br/><span class="nat">→ ${esc(r.nat)}</span>` : ''}</li>`),
            ...(hook.policy ? [`<li class="chain">${esc(hook.hook)} policy ${esc(hook.policy)}</li>`] : []),
          ],
    );
    const notes = h.notes.map((n) => `<li class="nat">→ ${esc(n)}</li>`);
    const fate = h.fate === 'DROP' ? '<li class="drop">DROP: the packet ends here</li>' : '';
    return `<div class="hop-title">${esc(h.host)} · ${esc(h.direction)} · <span class="mono">${esc(h.packet)}</span></div><ul>${rules.join('')}${notes.join('')}${fate}</ul>`;
  });
  return `<div class="trace"><h3>Rule trace (${esc(t.mode)}, the kernel's own)</h3>${parts.join('')}</div>`;
}

export function renderHtml(input: HtmlInput): string {
  const r = input.result;
  const ok = r.failed === 0;
  const layout = layoutTopology(input.graph);
  const paths = r.paths.map((p, pi) => {
    const flow = p.flow ? `${esc(p.flow.client)} &gt; ${esc(p.flow.target)}${p.flow.answer ? `, answered by ${esc(p.flow.answer.pod)}` : ', no answer'}` : 'no request of this path was seen';
    const walk = input.player[pi];
    const at = (s: { at: string }, k: number) => {
      const hop = walk?.stepHops[k] ?? -1;
      return hop < 0 ? esc(s.at) : `<a href="#hop-${pi}-${hop}" data-path-index="${pi}" data-hop="${hop}" title="the hop that shows it">${esc(s.at)}</a>`;
    };
    const rows = p.steps.map((s, k) => {
      const cls = s.status === 'pass' ? 'pass' : s.status === 'fail' ? 'fail' : 'na';
      const note = s.note ? `<tr class="${cls}"><td></td><td colspan="5" class="note">${esc(s.note)}</td></tr>` : '';
      return `<tr class="step ${cls}" data-step="${esc(s.step)}"><td class="mono">${esc(s.step)}</td><td>${esc(s.title)}</td><td class="mono">${at(s, k)}</td><td class="mono">${esc(s.expected)}</td><td class="mono">${esc(s.seen)}</td><td class="result">${s.status === 'pass' ? 'pass' : s.status === 'fail' ? 'FAIL' : 'n/a'}</td></tr>${note}`;
    });
    const trace = input.traces?.[p.name];
    return `<section class="path" data-path="${esc(p.name)}">
<h2>Path: ${esc(p.name)}</h2>
<p>${esc(p.summary)}</p>
<p class="mono">${flow}</p>
<h3>The request, then the reply, hop by hop (highlighted: changed since the hop before)</h3>
${walk ? walkList(pi, walk) : ''}
<table class="steps"><thead><tr><th>step</th><th>what</th><th>at</th><th>expected</th><th>seen</th><th>result</th></tr></thead><tbody>${rows.join('')}</tbody></table>
${trace ? traceBlock(trace) : ''}
</section>`;
  });
  const captures = Object.entries(r.captures).map(([point, file]) => `<li><a href="${esc(basename(file))}">${esc(basename(file))}</a> <span class="muted">(${esc(point)})</span></li>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`verify ${r.lab}: ${r.title}`)}</title>
<style>${STYLE}</style></head>
<body>
<header><h1>${esc(r.title)}</h1>
<p>${r.seed ? `follows seed ${esc(r.seed)} · ` : ''}lab <b>${esc(r.lab)}</b> · ${esc(input.when)}</p>
<p class="summary ${ok ? 'ok' : 'bad'}">${r.passed} passed, ${r.failed} failed, ${r.flows.length} requests, ${r.ms} ms</p></header>
<main>
<section><h2>Topology, and each path on it</h2><p>Every box is a Linux network namespace; bars are bridges; lines are veth pairs (name on each end). Step through each path with the buttons or the arrow keys: the hop's link and namespace are lit, the dot marks where it was captured.</p>${playerControls(input.player, layout)}<div class="figure">${topologySvg(input.graph, layout)}</div></section>
${paths.join('\n')}
<section><h2>Captures</h2><p>tcpdump's pcaps of this run, beside this file (open them in Wireshark); also <a href="report.json">report.json</a>, <a href="evidence.json">evidence.json</a>, <a href="conntrack.txt">conntrack.txt</a>.</p><ul class="captures">${captures.join('')}</ul></section>
</main><script>${PLAYER_SCRIPT}</script></body></html>
`;
}
