import type { ConntrackEntry } from '../kernel/conntrack.js';
import type { ParsedRule } from '../plan/kube-proxy/rules.js';
import { inPrefix, joinHostPort } from '../util/ipv6.js';

/**
 * The light trace verify keeps for the player: for one translated connection, the rules on its
 * translating node that rewrote it (the jumps that led to the DNAT, the DNAT, the MASQUERADE)
 * with their hit counters from the run. Found by walking the node's saved rules with the
 * connection's conntrack entry, not by tracing the kernel: one rule read per node, no monitor.
 * Pure.
 */

export interface RuleHit {
  table: string;
  chain: string;
  /** The rule as its tool prints it, comment left out. */
  rule: string;
  comment?: string;
  /** Packets that hit it, after the run (iptables mode; nftables mode's rules carry no counter). */
  packets?: number;
  /** Of those, during the run. */
  added?: number;
}

export interface Translation {
  /** The node whose conntrack holds the connection: where it was translated. */
  node: string;
  /** The conntrack entry, as `conntrack -L` prints it. */
  conntrack: string;
  dnat: RuleHit[];
  snat: RuleHit[];
  /** nftables mode: connections in that node's conntrack translated to the same endpoint (its stand-in for a counter). */
  sameEndpoint?: number;
}

export interface Packet {
  src: string;
  dst: string;
  dport: number;
  proto: string;
  local: string[];
}

const ipIn = inPrefix;

/** Does the rule's match part hold for the packet? Matches the lab cannot judge (marks, statistic, recent) count as holding. */
function matches(r: ParsedRule, p: Packet): boolean {
  const checks: [string, (v: string) => boolean][] = [
    ['-d', (v) => ipIn(v, p.dst)],
    ['-s', (v) => ipIn(v, p.src)],
    ['--dport', (v) => Number(v) === p.dport],
    ['-p', (v) => v === p.proto],
    ['--dst-type', (v) => v !== 'LOCAL' || p.local.includes(p.dst)],
  ];
  return checks.every(([opt, ok]) => {
    const v = r.options.get(opt);
    return v === undefined || ok(v) !== r.negated.has(opt);
  });
}

export function ruleText(r: ParsedRule): string {
  return r.text
    .replace(/^\[\d+:\d+\]\s*/, '')
    .replace(/^-A \S+\s*/, '')
    .replace(/-m comment --comment ("[^"]*"|\S+)\s*/, '')
    .replace(/\s+/g, ' ')
    .trim();
}

const hit = (r: ParsedRule, before?: ParsedRule): RuleHit => ({
  table: r.table,
  chain: r.chain,
  rule: ruleText(r),
  ...(r.options.get('--comment') ? { comment: r.options.get('--comment')!.replace(/^"|"$/g, '') } : {}),
  ...(r.counters ? { packets: r.counters.packets, added: r.counters.packets - (before?.counters?.packets ?? 0) } : {}),
});

/** Depth-first through the nat table from `chain`, in rule order, to the DNAT that sent the packet to `to`. */
function walkToDnat(rules: ParsedRule[], chain: string, p: Packet, to: string, depth = 0): ParsedRule[] | undefined {
  if (depth > 16) return undefined;
  for (const r of rules.filter((x) => x.table === 'nat' && x.chain === chain)) {
    if (!matches(r, p)) continue;
    const target = r.options.get('-j') ?? '';
    if (target === 'DNAT') {
      if (r.options.get('--to-destination') === to) return [r];
      continue;
    }
    if (target === 'RETURN' || target === 'ACCEPT') return undefined;
    if (!rules.some((x) => x.table === 'nat' && x.chain === target)) continue;
    const below = walkToDnat(rules, target, p, to, depth + 1);
    if (below) return [r, ...below];
  }
  return undefined;
}

const key = (r: ParsedRule) => `${r.table} ${r.chain} ${ruleText(r)}`;

/** iptables mode: the rules that translated the connection, from `iptables-save -c` before and after the run. */
export function iptablesTranslation(node: string, entry: ConntrackEntry, local: string[], after: ParsedRule[], before: ParsedRule[] = []): Translation {
  const old = new Map(before.map((r) => [key(r), r]));
  const withHits = (rs: ParsedRule[]) => rs.map((r) => hit(r, old.get(key(r))));
  const p: Packet = { src: entry.original.src, dst: entry.original.dst, dport: entry.original.dport, proto: entry.protocol, local };
  const dnatted = entry.reply.src !== entry.original.dst || entry.reply.sport !== entry.original.dport;
  const to = joinHostPort(entry.reply.src, entry.reply.sport);
  const dnat = dnatted ? (walkToDnat(after, 'PREROUTING', p, to) ?? walkToDnat(after, 'OUTPUT', p, to) ?? []) : [];
  const snatted = entry.reply.dst !== entry.original.src || entry.reply.dport !== entry.original.sport;
  const masq = after.find((r) => r.table === 'nat' && r.options.get('-j') === 'MASQUERADE');
  const into = masq && after.find((r) => r.table === 'nat' && r.chain === 'POSTROUTING' && r.options.get('-j') === masq.chain);
  const snat = snatted && masq ? [...(into ? [into] : []), masq] : [];
  return { node, conntrack: entry.text, dnat: withHits(dnat), snat: withHits(snat) };
}

interface NftStatement {
  /** The chain, or "map NAME" for a map's element. */
  chain: string;
  text: string;
}

/** `nft list table ip kube-proxy` as statements: each chain's rules and each map's elements. */
export function nftStatements(text: string): NftStatement[] {
  const out: NftStatement[] = [];
  let owner = '';
  let elements = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const head = /^(chain|map|set) (\S+) \{/.exec(line);
    if (head) owner = head[1] === 'chain' ? head[2]! : `${head[1]} ${head[2]}`;
    else if (line.startsWith('elements = {') || elements) {
      elements += ` ${line.replace(/^elements = \{/, '')}`;
      if (line.endsWith('}')) {
        for (const e of elements.replace(/\}$/, '').split(',')) if (e.trim()) out.push({ chain: owner, text: e.trim() });
        elements = '';
      }
    } else if (line && line !== '}' && !/^(table|type|hook|flags|timeout|comment|policy|size)\b/.test(line) && !owner.startsWith('set ')) {
      out.push({ chain: owner, text: line.replace(/\s*comment "[^"]*"/, '').replace(/\s+/g, ' ') });
    }
  }
  return out;
}

const refersTo = (text: string, name: string) => {
  const esc = name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  return new RegExp(`(goto|jump) ${esc}(?=$|[\\s,}])|@${esc.replace(/^map /, '')}(?=$|[\\s,}])`).test(text);
};

/**
 * How well a statement that leads to a chain fits the connection: a map element for its address
 * or port beats one for another address; the base chain packets from outside pass beats OUTPUT.
 */
function fit(s: NftStatement, e: ConntrackEntry): number {
  if (s.text.includes(e.original.dst)) return 3;
  if (new RegExp(`\\. ${e.original.dport}\\b`).test(s.text)) return 2;
  if (s.chain.startsWith('map ') && /\d+\.\d+\.\d+\.\d+|[0-9a-f]*:[0-9a-f:]*:/.test(s.text)) return -1;
  return s.chain === 'nat-output' ? -1 : 0;
}

/** nftables mode: back from the endpoint chain's dnat, through whatever sent the packet there, to a base chain. */
export function nftTranslation(node: string, entry: ConntrackEntry, text: string, sameEndpoint: number): Translation {
  const all = nftStatements(text);
  const to = joinHostPort(entry.reply.src, entry.reply.sport);
  const found = all.find((s) => s.chain.startsWith('endpoint-') && s.text.includes(`dnat to ${to}`));
  const dnat: NftStatement[] = found ? [found] : [];
  let cur = found?.chain;
  for (let i = 0; cur && i < 10 && !/^nat-(prerouting|output)$/.test(cur); i++) {
    const refs = all.filter((s) => refersTo(s.text, cur!) && !dnat.includes(s));
    const best = refs.sort((a, b) => fit(b, entry) - fit(a, entry))[0];
    if (!best) break;
    dnat.unshift(best);
    cur = best.chain;
  }
  const snatted = entry.reply.dst !== entry.original.src || entry.reply.dport !== entry.original.sport;
  const masq = all.filter((s) => (s.chain === 'masquerading' && s.text.includes('masquerade')) || (s.chain === 'nat-postrouting' && s.text.includes('jump masquerading')));
  const asHit = (s: NftStatement): RuleHit => ({ table: 'kube-proxy', chain: s.chain, rule: s.text });
  return { node, conntrack: entry.text, dnat: dnat.map(asHit), snat: snatted ? masq.map(asHit) : [], sameEndpoint };
}

const specificity = (r: ParsedRule) => ['-d', '--dport', '-s'].filter((o) => r.options.has(o)).length;

/**
 * iptables mode: the filter rule that dropped a packet: a DROP or REJECT whose match holds for it
 * and whose counter rose during the run (the most specific one, if several did).
 */
export function iptablesDropRule(after: ParsedRule[], before: ParsedRule[], p: Packet): string | undefined {
  const old = new Map(before.map((r) => [key(r), r]));
  const rose = after
    .filter((r) => r.table === 'filter' && ['DROP', 'REJECT'].includes(r.options.get('-j') ?? '') && matches(r, p))
    .filter((r) => (r.counters?.packets ?? 0) > (old.get(key(r))?.counters?.packets ?? 0));
  const best = rose.sort((a, b) => specificity(b) - specificity(a))[0];
  return best ? `${best.table} ${best.chain}: ${ruleText(best)}` : undefined;
}

/**
 * nftables mode (no counters): the statement that drops or rejects a packet to its address and
 * port: the no-endpoint maps' element for it, or the drop of the firewall chain its address's
 * element leads to.
 */
export function nftDropRule(text: string, p: Packet): string | undefined {
  const all = nftStatements(text);
  const forIt = (s: NftStatement) => s.text.includes(`${p.dst} . ${p.proto} . ${p.dport}`) || (p.local.includes(p.dst) && new RegExp(`^${p.proto} \\. ${p.dport} :`).test(s.text));
  const element = all.find((s) => s.chain.startsWith('map no-endpoint') && forIt(s) && /: (drop|goto reject-chain)$/.test(s.text));
  if (element) return `${element.chain}: ${element.text}`;
  for (const s of all.filter((x) => x.chain.startsWith('map firewall') && forIt(x))) {
    const chain = /goto (\S+)$/.exec(s.text)?.[1];
    const drop = all.find((x) => x.chain === chain && /\bdrop$/.test(x.text));
    if (drop) return `${drop.chain}: ${drop.text}`;
  }
  return undefined;
}
