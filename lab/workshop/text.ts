/** Small text helpers for the workshop's terminal output. Pure. */

/** Replace {lab} with the learner's lab name. */
export function fill(text: string, lab: string): string {
  return text.replace(/\{lab\}/g, lab);
}

/**
 * Wrap prose to a width, indenting every line. Lines of a paragraph are joined and refilled;
 * blank lines separate paragraphs; lines that start with a space or a list marker ("- ")
 * are kept as written (commands, lists).
 */
export function wrap(text: string, width: number, indent = '  '): string {
  const out: string[] = [];
  const room = Math.max(20, width - indent.length);
  let para: string[] = [];
  const flush = () => {
    if (para.length === 0) return;
    let cur = '';
    for (const word of para.join(' ').split(/ +/).filter(Boolean)) {
      if (cur && visibleLength(cur) + 1 + visibleLength(word) > room) {
        out.push(indent + cur);
        cur = word;
      } else {
        cur = cur ? `${cur} ${word}` : word;
      }
    }
    if (cur) out.push(indent + cur);
    para = [];
  };
  for (const line of text.replace(/\s+$/, '').split('\n')) {
    if (line.trim() === '') {
      flush();
      out.push('');
    } else if (/^\s/.test(line) || /^[-*] /.test(line)) {
      flush();
      out.push(indent + line);
    } else {
      para.push(line.trim());
    }
  }
  flush();
  return out.join('\n');
}

/** Length on screen: colour escapes take no room. */
const visibleLength = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '').length;

/**
 * Split a shown command into arguments: spaces, with "double" or 'single' quoted words.
 * Returns undefined for anything a shell would be needed for (pipes, redirections, $…).
 */
export function splitCommand(cmd: string): string[] | undefined {
  const out: string[] = [];
  let cur = '';
  let quote: '"' | "'" | undefined;
  let has = false;
  for (const ch of cmd.trim()) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else cur += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else if ('|&;<>$`\\'.includes(ch)) {
      return undefined;
    } else {
      cur += ch;
    }
  }
  if (quote) return undefined;
  if (has || cur) out.push(cur);
  return out;
}
