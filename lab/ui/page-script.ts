/**
 * The live page's script, plain browser JavaScript (no framework, nothing loaded): it listens to
 * the server's events and calls its few actions, sending the token back with each. Every text
 * from the lab goes into the page as text (textContent), never as markup.
 */
export const PAGE_SCRIPT = String.raw`
'use strict';
const cfg = JSON.parse(document.getElementById('config').textContent);
const $ = (id) => document.getElementById(id);
const withToken = (path) => path + '?token=' + encodeURIComponent(cfg.token);
function api(path, body) {
  return fetch(withToken(path), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    .then((r) => r.json().then((j) => { if (!r.ok) throw new Error(j.error || String(r.status)); return j; }));
}
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
const hostBox = (name) => document.querySelector('svg.topology [data-host="' + CSS.escape(name) + '"]');
const hostOf = (point) => point.split(':')[0];

function showPods(p) {
  if (p.error) { $('status').textContent = p.error; return; }
  if (!p.up) { $('status').textContent = 'lab ' + cfg.lab + ' is not up'; return; }
  let ready = 0;
  for (const pod of p.pods) {
    const box = hostBox(pod.name);
    if (pod.ready && pod.running) ready++;
    if (!box) continue;
    box.classList.toggle('not-ready', !pod.ready);
    box.classList.toggle('terminating', pod.terminating);
    box.classList.toggle('stopped', !pod.running);
  }
  $('status').textContent = 'live: lab ' + cfg.lab + ' is up';
  $('pods-summary').textContent = ready + ' of ' + p.pods.length + ' pods ready and serving';
}

function showConntrack(c) {
  if (c.error) { $('conntrack').textContent = c.error; return; }
  $('nat-node').value = c.node;
  $('conntrack').textContent = c.lines.length ? c.lines.join('\n') : '(no connections)';
}

function hopItem(h, dir) {
  const li = el('li', undefined, 'hop');
  li.append(el('span', h.point + ' ', 'where'), el('span', dir + ' '));
  li.append(el('span', h.src, h.changed.includes('src') ? 'changed' : ''), el('span', ' > '), el('span', h.dst, h.changed.includes('dst') ? 'changed' : ''));
  li.append(el('span', ' [' + h.flags + ']' + (h.outer ? ' inside ' + h.outer : ''), 'dim'));
  li.dataset.host = hostOf(h.point);
  return li;
}

function traceItem(t) {
  const li = el('li', undefined, 'hop');
  li.append(el('span', t.host + ' ', 'where'), el('span', t.direction + ' ' + t.packet + ' → ' + t.fate));
  const rules = el('ul');
  for (const hook of t.hooks) {
    for (const r of hook.rules) rules.append(el('li', hook.hook + ' ' + r.chain + ': ' + r.rule + (r.nat ? '  (' + r.nat + ')' : '') + ' → ' + r.verdict, 'rule'));
    if (hook.note) rules.append(el('li', hook.hook + ': ' + hook.note, 'rule dim'));
  }
  for (const n of t.notes) rules.append(el('li', n, 'rule dim'));
  li.append(rules);
  li.dataset.host = t.host;
  return li;
}

function showWalk(w) {
  const walk = $('walk');
  walk.replaceChildren();
  const f = w.flow;
  $('walk-status').textContent = (f.answer ? 'answered by ' + f.answer.pod + ' (' + f.answer.podIP + ':' + f.answer.port + '), which saw the client as ' + f.answer.client : 'no answer: ' + (f.error || (f.datagram ? f.datagram.reply : 'none'))) + ', in ' + w.ms + ' ms';
  const items = [];
  w.hops.request.forEach((h) => items.push(hopItem(h, 'request')));
  w.hops.reply.forEach((h) => items.push(hopItem(h, 'reply')));
  items.push(el('li', 'the rule trace, namespace by namespace:', 'dim'));
  w.trace.forEach((t) => items.push(traceItem(t)));
  // One hop after another, as the packet went; each host it touched is outlined in the picture.
  items.forEach((li, i) => setTimeout(() => {
    walk.append(li);
    const box = li.dataset.host && hostBox(li.dataset.host);
    if (box) box.classList.add('on-walk');
    if (i === items.length - 1) walk.dataset.done = '1';
  }, 120 * i));
  if (w.natNode) $('nat-node').value = w.natNode;
}

function startWalk() {
  $('walk').replaceChildren();
  delete $('walk').dataset.done;
  $('wire').replaceChildren();
  document.querySelectorAll('svg.topology .on-walk').forEach((b) => b.classList.remove('on-walk'));
}

function showSteps(s) {
  const ol = $('ws-steps');
  if (!ol) return;
  ol.replaceChildren(...s.steps.map((st) => el('li', st.title + (st.seed ? '  [seed ' + st.seed + ']' : ''), st.status)));
}

function showPrompt(p) {
  const on = p !== null && p !== undefined;
  $('ws-line').disabled = !on;
  $('ws-send').disabled = !on;
  $('ws-prompt').textContent = on ? p : '(workshop complete)';
}

function showBreak(b) {
  const list = b.faults.map((f) => f.fault + ' (' + f.summary + ')');
  if (b.hidden) list.push(b.hidden + ' hidden (a challenge\'s, to be found)');
  $('faults-in').textContent = list.length ? list.join('; ') : 'none';
  $('faults-in').classList.toggle('broken', list.length > 0);
  if ($('repair')) $('repair').disabled = list.length === 0;
  if ($('ch-go')) $('ch-go').disabled = Boolean(b.challenge && b.challenge.onPage);
  const c = b.challenge;
  if (!c || !$('ch-status')) return;
  const what = c.fault ? c.fault + ' on ' + c.host : 'the fault hidden';
  const outcome = { 'in-progress': 'on', fixed: 'solved', 'gave-up': 'given up', stopped: 'stopped' }[c.outcome] || c.outcome;
  $('ch-status').textContent = 'challenge ' + outcome + ': ' + what + ', ' + c.attempts + ' attempts, ' + c.fixChecks + ' fix checks, ' + c.hints + ' hints';
  $('ch-status').dataset.outcome = c.outcome;
}

function showChallengePrompt(p) {
  const on = p !== null && p !== undefined;
  $('ch-line').disabled = !on;
  $('ch-send').disabled = !on;
  $('ch-check').disabled = p !== 'fix> ';
  $('ch-prompt').textContent = on ? p : '(no challenge on)';
}

const events = new EventSource(withToken('/events'));
const on = (name, fn) => events.addEventListener(name, (e) => fn(JSON.parse(e.data)));
on('pods', showPods);
on('conntrack', showConntrack);
on('walk-start', (r) => { startWalk(); $('walk-status').textContent = 'sending ' + r.from + ' → ' + r.to + '…'; });
on('walk-progress', (t) => { $('walk-status').textContent = t; });
on('packet', (l) => {
  const wire = $('wire');
  wire.append(el('li', l.point + '  ' + l.text));
  while (wire.children.length > 300) wire.firstChild.remove();
});
on('walk', showWalk);
on('walk-error', (e) => { $('walk-status').textContent = e.error; $('walk-status').className = 'err'; });
on('workshop-text', (t) => { const pre = $('ws-transcript'); pre.textContent += t; pre.scrollTop = pre.scrollHeight; });
on('workshop-prompt', showPrompt);
on('workshop-steps', showSteps);
on('break-state', showBreak);
on('challenge-text', (t) => { const pre = $('ch-transcript'); if (t === null) pre.textContent = ''; else pre.textContent += t; pre.scrollTop = pre.scrollHeight; });
on('challenge-prompt', (p) => { if ($('ch-line')) showChallengePrompt(p); });
events.onerror = () => { $('status').textContent = 'disconnected: is lab ui still running?'; };

$('send-form').addEventListener('submit', (e) => {
  e.preventDefault();
  $('walk-status').className = 'dim';
  api('/api/send', { from: $('from').value, to: $('to').value }).catch((err) => { $('walk-status').textContent = err.message; $('walk-status').className = 'err'; });
});
$('nat-node').addEventListener('change', () => api('/api/conntrack', { node: $('nat-node').value }).catch(() => undefined));
if ($('ws-form')) {
  $('ws-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const line = $('ws-line').value;
    $('ws-line').value = '';
    api('/api/workshop', { line }).catch((err) => { $('ws-transcript').textContent += err.message + '\n'; });
  });
}
if ($('ch-form')) {
  const say = (err) => { $('ch-transcript').textContent += err.message + '\n'; };
  const answer = (line) => api('/api/challenge', { line }).catch(say);
  $('ch-start').addEventListener('submit', (e) => {
    e.preventDefault();
    $('ch-go').disabled = true;
    $('ch-transcript').textContent = 'breaking the lab…\n';
    api('/api/challenge/start', { fault: $('ch-fault').value }).catch((err) => { say(err); $('ch-go').disabled = false; });
  });
  $('ch-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const line = $('ch-line').value;
    $('ch-line').value = '';
    answer(line);
  });
  $('ch-check').addEventListener('click', () => answer('check'));
  $('repair').addEventListener('click', () => {
    $('repair').disabled = true;
    api('/api/repair', {}).then((r) => { $('ch-transcript').textContent += 'repaired: ' + (r.repaired.join(', ') || 'nothing') + '\n'; }, say);
  });
}
`;
