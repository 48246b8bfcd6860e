import type { LabPicture } from './picture.js';
import { PAGE_SCRIPT } from './page-script.js';

/**
 * The live page of a lab: one HTML document with its CSS and script inline, loading nothing
 * (the server's Content-Security-Policy forbids it too). Pure: the server fills in the lab.
 */

export interface PageOptions {
  lab: string;
  token: string;
  picture: LabPicture;
  senders: string[];
  destinations: { to: string; proto: string; what: string }[];
  nodes: string[];
  natNode: string;
  workshop: boolean;
  /** The faults that apply to this lab, for its break-and-fix challenges. */
  faults: { name: string; description: string }[];
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** JSON inside a <script> element: no "</script>" or "<!--" can end it early. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

const PAGE_STYLE = `
body { font: 14px system-ui, sans-serif; margin: 0; color: #1d2733; background: #f6f7f9; }
header { padding: 10px 16px; background: #1d2733; color: #fff; display: flex; gap: 16px; align-items: baseline; }
header h1 { font-size: 17px; margin: 0; }
#status { color: #c9d3de; }
main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 12px; padding: 12px; }
section { background: #fff; border: 1px solid #d5dbe2; border-radius: 6px; padding: 10px 12px; min-width: 0; }
section h2 { font-size: 14px; margin: 0 0 8px; }
#picture { overflow: auto; max-height: 70vh; }
pre, ol.mono, ul.mono { font: 12px ui-monospace, Menlo, Consolas, monospace; }
pre { white-space: pre-wrap; margin: 0; max-height: 40vh; overflow: auto; }
ul.mono, ol.mono { margin: 0; padding-left: 20px; max-height: 40vh; overflow: auto; }
.changed { background: #ffe08a; }
.dim { color: #6b7785; }
.err { color: #b3261e; }
form { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 8px; }
select, input, button { font: inherit; }
li.hop { margin-bottom: 4px; }
li.hop .where { font-weight: bold; }
li.rule { color: #2b3a4a; }
svg.topology .host.not-ready rect.ns { stroke: #b3261e; stroke-dasharray: 4 3; }
svg.topology .host.stopped rect.ns { fill: #eee; stroke: #999; }
svg.topology .host.terminating rect.ns { stroke: #c0562a; }
svg.topology .host.on-walk rect.ns { stroke: #0b6bcb; stroke-width: 3.5; }
#ws-steps li.correct::marker { content: "✔ "; }
#ws-steps li.skipped::marker { content: "– "; }
#break-panel { grid-column: 1 / -1; }
#faults-in.broken { color: #b3261e; font-weight: bold; }
`;

function options(values: { value: string; label: string }[]): string {
  return values.map((v) => `<option value="${escapeHtml(v.value)}">${escapeHtml(v.label)}</option>`).join('');
}

function workshopSection(on: boolean): string {
  if (!on) return `<section id="workshop"><h2>Workshop</h2><p class="dim">this lab's scenario has no workshop</p></section>`;
  return `<section id="workshop"><h2>Workshop</h2><ol id="ws-steps" class="mono"></ol>
<pre id="ws-transcript"></pre>
<form id="ws-form"><label id="ws-prompt" for="ws-line">answer&gt;</label><input id="ws-line" size="40" maxlength="200" autocomplete="off" disabled><button id="ws-send" disabled>Answer</button></form>
<p class="dim">an answer, or hint, skip, again, help: checked against the live lab, as in the terminal</p></section>`;
}

function breakSection(faults: { name: string; description: string }[]): string {
  if (faults.length === 0) return `<section id="break-panel"><h2>Break and fix</h2><p class="dim">no fault applies to this lab (lab break --list says why)</p><p>faults in: <span id="faults-in"></span></p></section>`;
  return `<section id="break-panel"><h2>Break and fix</h2>
<p>faults in: <span id="faults-in">none</span> <button id="repair" type="button" disabled>Repair (instructor)</button></p>
<form id="ch-start"><label>challenge <select id="ch-fault"><option value="random">a random fault</option>${options(faults.map((f) => ({ value: f.name, label: f.name })))}</select></label><button id="ch-go">Start a challenge</button></form>
<details><summary>the faults that apply to this lab</summary><ol id="fault-list" class="mono">${faults.map((f) => `<li><b>${escapeHtml(f.name)}</b>: ${escapeHtml(f.description)}</li>`).join('')}</ol></details>
<p id="ch-status" class="dim"></p>
<pre id="ch-transcript"></pre>
<form id="ch-form"><label id="ch-prompt" for="ch-line">(no challenge on)</label><input id="ch-line" size="40" maxlength="200" autocomplete="off" disabled><button id="ch-send" disabled>Answer</button><button id="ch-check" type="button" disabled>Check my fix</button></form>
<p class="dim">name the fault (its number or words), then its host; fix it in a terminal with lab exec &lt;lab&gt; &lt;host&gt; -- …, then Check my fix: the live kernel is read. hint, skip (show it and repair), quit (leave it in)</p></section>`;
}

export function uiPage(o: PageOptions): string {
  const config = { lab: o.lab, token: o.token, natNode: o.natNode };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lab ${escapeHtml(o.lab)}</title>
<style>${o.picture.css}${PAGE_STYLE}</style></head>
<body>
<header><h1>kube-packet-lab: ${escapeHtml(o.lab)}</h1><span id="status">connecting…</span></header>
<main>
<section id="topology"><h2>Topology <span class="dim" id="pods-summary"></span></h2><div id="picture">${o.picture.svg}</div></section>
<section id="send-panel"><h2>Send one request</h2>
<form id="send-form"><label>from <select id="from">${options(o.senders.map((s) => ({ value: s, label: s })))}</select></label>
<label>to <select id="to">${options(o.destinations.map((d) => ({ value: d.to, label: `${d.to} ${d.proto.toUpperCase()}, ${d.what}` })))}</select></label>
<button id="send">Send</button></form>
<div id="walk-status" class="dim"></div>
<h2>Its walk</h2><ol id="walk" class="mono"></ol>
<h2>Live captures</h2><ul id="wire" class="mono"></ul></section>
<section id="conntrack-panel"><h2>conntrack on <select id="nat-node">${options(o.nodes.map((n) => ({ value: n, label: n })))}</select></h2><pre id="conntrack"></pre></section>
${workshopSection(o.workshop)}
${breakSection(o.faults)}
</main>
<script type="application/json" id="config">${scriptJson(config)}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
