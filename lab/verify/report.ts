import { bold, dim, green, red, yellow } from '../cli/output.js';
import type { StepResult, VerifyResult } from './engine.js';

// eslint-disable-next-line no-control-regex
const visibleLength = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '').length;

/** Wrap prose at word boundaries. */
function wrap(text: string, width: number): string[] {
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

const mark = (s: StepResult) => (s.status === 'pass' ? green('pass') : s.status === 'fail' ? red('FAIL') : dim('n/a'));

function table(rows: string[][], header: string[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [bold(line(header)), ...rows.map(line)];
}

/** The human report: one table per path, the seed's simplifications as numbered notes, one summary line. */
export function renderReport(r: VerifyResult): string {
  const out: string[] = [];
  out.push(bold(r.title));
  if (r.seed) out.push(dim(`follows seed ${r.seed}`));
  out.push('');
  for (const p of r.paths) {
    const via = p.flow ? ` (request ${p.flow.client} > ${p.flow.target}${p.flow.answer ? `, answered by ${p.flow.answer.pod}` : ''})` : '';
    out.push(bold(`path: ${p.name}`) + dim(via));
    if (p.summary) out.push(dim(p.summary));
    const notes: string[] = [];
    const rows = p.steps.map((s) => {
      let step = s.step;
      if (s.note) {
        notes.push(s.note);
        step += ` [${notes.length}]`;
      }
      // Colour codes would upset padding: the result column comes last.
      return [step, s.title, s.at, s.expected, s.seen, mark(s)];
    });
    const lines = table(rows, ['step', 'what', 'at', 'expected', 'seen', 'result']).map((l) => `  ${l}`);
    const width = process.stdout.columns;
    if (width && Math.max(...lines.map(visibleLength)) > width) {
      // Too wide for this terminal: one block per step instead of one row.
      for (const [step, what, at, expected, seen, result] of rows) {
        out.push(`  ${result} ${bold(step!)} ${what}${at ? dim(` @ ${at}`) : ''}`);
        out.push(`       expected ${expected}`);
        if (seen) out.push(`       seen     ${seen}`);
      }
    } else {
      out.push(...lines);
    }
    notes.forEach((n, i) => {
      const [first, ...rest] = wrap(n, (process.stdout.columns || 100) - 8);
      out.push(yellow(`  [${i + 1}] `) + first);
      for (const line of rest) out.push(`      ${line}`);
    });
    out.push('');
  }
  out.push(`captures: ${r.runDir} (open the .pcap files in Wireshark)`);
  const summary = `${r.passed} passed, ${r.failed} failed, ${r.flows.length} requests, ${r.ms} ms`;
  out.push(r.failed === 0 ? green(`verify ${r.lab}: ${summary}`) : red(`verify ${r.lab}: ${summary}`));
  return out.join('\n');
}
