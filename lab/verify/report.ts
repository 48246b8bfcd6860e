import { bold, dim, green, red, visibleLength, yellow } from '../util/colour.js';
import type { VerifyResult } from './engine.js';
import type { StepResult } from './judges.js';

/** Wrap prose at word boundaries. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines.length ? lines : [''];
}

const mark = (s: StepResult) => (s.status === 'pass' ? green('pass') : s.status === 'fail' ? red('FAIL') : dim('n/a '));

function table(rows: string[][], header: string[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [bold(line(header)), ...rows.map(line)];
}

/** The narrow layout's widest line: fits a 100-column terminal and anything wider. */
export const NARROW_MAX = 100;

export interface ReportOptions {
  /** The terminal's width; undefined (not a terminal): the table, whatever its width. */
  columns?: number;
  /** Always the table (`--wide`). */
  wide?: boolean;
  /** Lines to add before the summary (e.g. where report.html is). */
  extra?: string[];
}

/**
 * The narrow layout, one block per step: result, step, where, what; then what was seen (and,
 * for a failed step, what was expected) on lines of their own, wrapped to the width.
 */
function narrowSteps(steps: StepResult[], labels: string[], width: number): string[] {
  const out: string[] = [];
  const indent = '         ';
  const field = (name: string, value: string) => wrap(value, width - indent.length - name.length - 1).map((l, i) => `${indent}${i === 0 ? name : ' '.repeat(name.length)} ${l}`);
  steps.forEach((s, i) => {
    const head = `${labels[i]}  ${s.at ? `${s.at}  ` : ''}`;
    const [first, ...rest] = wrap(s.title, Math.max(20, width - 8 - head.length));
    out.push(`  ${mark(s)}  ${bold(labels[i]!)}  ${s.at ? dim(s.at) + '  ' : ''}${first}`);
    for (const r of wrap(rest.join(' '), width - indent.length)) if (r) out.push(`${indent}${r}`);
    if (s.status === 'fail' || !s.seen) out.push(...field('expected', s.expected));
    if (s.seen) out.push(...field('seen', s.seen));
  });
  return out;
}

/** The human report: per path its steps (a table, or blocks on a narrow terminal), the seed's simplifications as numbered notes, one summary line. */
export function renderReport(r: VerifyResult, given: ReportOptions = {}): string {
  // A terminal that reports no width (0, e.g. some ptys) counts as none; below 40 columns, wrap at 40.
  const opts = { ...given, columns: given.columns ? Math.max(given.columns, 40) : undefined };
  const out: string[] = [];
  const proseWidth = Math.min(opts.columns ?? NARROW_MAX, NARROW_MAX);
  const fit = (text: string) => (opts.columns !== undefined && !opts.wide ? wrap(text, proseWidth) : [text]);
  out.push(...fit(r.title).map(bold));
  if (r.seed) out.push(...fit(`follows seed ${r.seed}`).map(dim));
  out.push('');
  for (const p of r.paths) {
    const via = p.flow ? ` (request ${p.flow.client} > ${p.flow.target}${p.flow.answer ? `, answered by ${p.flow.answer.pod}` : ''})` : '';
    const narrow = opts.columns !== undefined && !opts.wide;
    if (narrow && `path: ${p.name}${via}`.length > proseWidth) out.push(bold(`path: ${p.name}`), dim(via.trim()));
    else out.push(bold(`path: ${p.name}`) + dim(via));
    if (p.summary) out.push(...(narrow ? wrap(p.summary, proseWidth) : [p.summary]).map(dim));
    const notes: string[] = [];
    const labels = p.steps.map((s) => {
      if (!s.note) return s.step;
      notes.push(s.note);
      return `${s.step} [${notes.length}]`;
    });
    // Colour codes would upset padding: the result column comes last.
    const rows = p.steps.map((s, i) => [labels[i]!, s.title, s.at, s.expected, s.seen, mark(s)]);
    const lines = table(rows, ['step', 'what', 'at', 'expected', 'seen', 'result']).map((l) => `  ${l}`);
    const tooWide = opts.columns !== undefined && Math.max(...lines.map(visibleLength)) > opts.columns;
    out.push(...(tooWide && !opts.wide ? narrowSteps(p.steps, labels, proseWidth) : lines));
    notes.forEach((n, i) => {
      const [first, ...rest] = wrap(n, proseWidth - 8);
      out.push(yellow(`  [${i + 1}] `) + first);
      for (const line of rest) out.push(`      ${line}`);
    });
    out.push('');
  }
  out.push(`captures: ${r.runDir} (open the .pcap files in Wireshark)`);
  out.push(...(opts.extra ?? []));
  const summary = `${r.passed} passed, ${r.failed} failed, ${r.flows.length} requests, ${r.ms} ms`;
  out.push(r.failed === 0 ? green(`verify ${r.lab}: ${summary}`) : red(`verify ${r.lab}: ${summary}`));
  return out.join('\n');
}
