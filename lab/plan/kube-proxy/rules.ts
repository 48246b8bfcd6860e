/**
 * iptables rules as data: a chain, then the arguments after "-A CHAIN".
 * Rendering to iptables-restore text and parsing iptables-save output both go through here,
 * so tests compare structure, not strings.
 */
export interface Rule {
  chain: string;
  args: string[];
}

export interface Table {
  name: 'nat' | 'filter' | 'mangle';
  /** User chains, declared (and so flushed) by the payload, in declaration order. */
  chains: string[];
  rules: Rule[];
  /** Stale user chains to delete (-X), for a resync after endpoints change. */
  deleteChains?: string[];
}

const needsQuotes = (arg: string) => arg === '' || /[\s"'\\;]/.test(arg);
const quote = (arg: string) => (needsQuotes(arg) ? `"${arg.replace(/(["\\])/g, '\\$1')}"` : arg);

export function renderRule(rule: Rule): string {
  return ['-A', rule.chain, ...rule.args].map(quote).join(' ');
}

/** One iptables-restore payload for the given tables. */
export function renderRestore(tables: Table[]): string {
  const lines: string[] = [];
  for (const t of tables) {
    const stale = t.deleteChains ?? [];
    lines.push(`*${t.name}`);
    // Declaring a chain flushes it; a stale chain is flushed, then deleted, as kube-proxy does.
    for (const c of [...t.chains, ...stale]) lines.push(`:${c} - [0:0]`);
    for (const r of t.rules) lines.push(renderRule(r));
    for (const c of stale) lines.push(`-X ${c}`);
    lines.push('COMMIT');
  }
  return `${lines.join('\n')}\n`;
}

/** Split a rule line the way iptables-restore does: spaces, with "double quoted" words. */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQuote = false;
  let has = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '\\' && inQuote && i + 1 < line.length) {
      cur += line[++i];
    } else if (ch === '"') {
      inQuote = !inQuote;
      has = true;
    } else if (ch === ' ' && !inQuote) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
    }
  }
  if (has || cur) out.push(cur);
  return out;
}

export interface ParsedRule {
  table: string;
  chain: string;
  /** match/option name → value, e.g. { "-d": "172.31.0.5/32", "--comment": "…", "-j": "KUBE-SVC-…" } */
  options: Map<string, string>;
  /** Modules loaded with -m, in order. */
  modules: string[];
  /** Options that were negated with "!". */
  negated: Set<string>;
  counters?: { packets: number; bytes: number };
  text: string;
}

/**
 * Parse iptables-save output (with or without -c) into rules whose options can be compared
 * regardless of the order iptables-save prints matches in.
 */
export function parseSave(text: string): { chains: Map<string, string[]>; rules: ParsedRule[] } {
  const chains = new Map<string, string[]>();
  const rules: ParsedRule[] = [];
  let table = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) table = line.slice(1);
    else if (line.startsWith(':')) {
      const list = chains.get(table) ?? [];
      list.push(line.slice(1).split(' ')[0]!);
      chains.set(table, list);
    } else if (line.startsWith('-A ') || line.startsWith('[')) {
      rules.push(parseRuleLine(table, line));
    }
  }
  return { chains, rules };
}

export function parseRuleLine(table: string, line: string): ParsedRule {
  let words = splitArgs(line);
  let counters: ParsedRule['counters'];
  const m = /^\[(\d+):(\d+)\]$/.exec(words[0] ?? '');
  if (m) {
    counters = { packets: Number(m[1]), bytes: Number(m[2]) };
    words = words.slice(1);
  }
  const chain = words[1] ?? '';
  const options = new Map<string, string>();
  const modules: string[] = [];
  const negated = new Set<string>();
  let negateNext = false;
  for (let i = 2; i < words.length; i++) {
    const w = words[i]!;
    if (w === '!') {
      negateNext = true;
      continue;
    }
    if (w === '-m') {
      modules.push(words[++i] ?? '');
      continue;
    }
    if (w.startsWith('-')) {
      const values: string[] = [];
      while (i + 1 < words.length && !words[i + 1]!.startsWith('-') && words[i + 1] !== '!') values.push(words[++i]!);
      options.set(w, values.join(' '));
      if (negateNext) negated.add(w);
      negateNext = false;
    }
  }
  return { table, chain, options, modules, negated, counters, text: line };
}
