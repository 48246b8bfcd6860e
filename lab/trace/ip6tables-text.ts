import type { TracePass } from './events.js';

/**
 * iptables mode over IPv6: `nft monitor trace` reads the trace (xtables-monitor cannot print
 * ip6tables rules here, lab/trace/rules.ts readsWithNft) and prints ip6tables' rules in nft's
 * syntax, each with its handle (`nft -a`). The same rules as ip6tables-save prints them: a chain's
 * rules are in the same order in `nft -a list table ip6 <t>` (which gives each one's handle) and in
 * `ip6tables-save -t <t>` (which gives its text), so the k-th of each is the same rule. Pure.
 */

/** Handle → the rule as ip6tables-save prints it after `-A <chain> `, keyed `<chain> <handle>`. */
export function ip6tablesRuleTexts(nftList: string, save: string): Map<string, string> {
  const handles = new Map<string, number[]>();
  let chain: string | undefined;
  for (const line of nftList.split('\n')) {
    const t = line.trim();
    const head = /^chain (\S+) \{/.exec(t);
    if (head) {
      chain = head[1]!;
      handles.set(chain, []);
      continue;
    }
    if (t === '}') {
      chain = undefined;
      continue;
    }
    const h = /# handle (\d+)$/.exec(t);
    if (chain && h && !/^(type|policy) /.test(t)) handles.get(chain)!.push(Number(h[1]));
  }
  const texts = new Map<string, string[]>();
  for (const line of save.split('\n')) {
    const m = /^-A (\S+) (.*)$/.exec(line);
    if (m) texts.set(m[1]!, [...(texts.get(m[1]!) ?? []), m[2]!]);
  }
  const out = new Map<string, string>();
  for (const [c, hs] of handles) {
    const ts = texts.get(c) ?? [];
    if (ts.length !== hs.length) continue; // the chain changed between the two reads: keep nft's text
    hs.forEach((h, i) => out.set(`${c} ${h}`, ts[i]!));
  }
  return out;
}

/** The passes with each rule step's text as ip6tables-save prints it, where its table's listing has it. */
export function withIp6tablesText(passes: TracePass[], byTable: Record<string, Map<string, string>>): TracePass[] {
  return passes.map((p) => ({
    ...p,
    steps: p.steps.map((s) => {
      const text = s.handle === undefined ? undefined : byTable[s.table]?.get(`${s.chain} ${s.handle}`);
      return text === undefined ? s : { ...s, rule: text };
    }),
  }));
}
