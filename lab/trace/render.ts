import { bold, dim, green, red, yellow } from '../util/colour.js';
import type { PacketDrop } from './drops.js';
import type { WalkHop, WalkRule } from './walk.js';

export interface TraceView {
  lab: string;
  mode: string;
  from: string;
  to: string;
  flow: { client: string; target: string; answer?: { pod: string }; datagram?: { reply: string }; error?: string };
  traced: string[];
  hops: WalkHop[];
  drops?: PacketDrop[];
  dropsUnavailable?: string;
  ms: number;
}

const verdictText = (r: WalkRule) => (r.verdict === 'JUMP' || r.verdict === 'GOTO' ? '' : r.verdict === 'DROP' || r.verdict === 'REJECT' ? red(r.verdict) : r.verdict === 'CONTINUE' ? '' : dim(r.verdict));

/** One line per rule: "table chain  rule  verdict", the comment and any translation below. */
function ruleLines(r: WalkRule): string[] {
  const head = `    ${dim(`${r.table} ${r.chain}`.padEnd(34))} ${r.rule}${verdictText(r) ? `  ${verdictText(r)}` : ''}`;
  const out = [head];
  if (r.comment) out.push(`    ${' '.repeat(34)} ${dim(`"${r.comment}"`)}`);
  if (r.nat) out.push(`    ${' '.repeat(34)} ${yellow(`→ ${r.nat}`)}`);
  return out;
}

/** The trace for a terminal: per namespace and direction, the hooks and rules in order. */
export function renderTrace(r: TraceView): string {
  const out: string[] = [];
  const answer = r.flow.answer ? `answered by ${r.flow.answer.pod}` : r.flow.datagram ? `answered: ${r.flow.datagram.reply}` : `no answer (${r.flow.error ?? 'dropped'})`;
  out.push(bold(`trace ${r.lab}: ${r.flow.client} > ${r.flow.target}, ${answer}`));
  // IPv6 in iptables mode is read with nft monitor too (lab/trace/rules.ts readsWithNft).
  const nft = r.mode === 'nftables' || r.flow.client.startsWith('[');
  out.push(dim(`kube-proxy mode ${r.mode}; the kernel's own trace (${nft ? 'nft monitor trace' : 'xtables-monitor --trace'}) in ${r.traced.join(', ')}`));
  for (const h of r.hops) {
    out.push('');
    const where = [h.iif && `in ${h.iif}`, h.oif && `out ${h.oif}`].filter(Boolean).join(', ');
    out.push(`${bold(h.host)} ${h.direction} ${h.packet}${where ? dim(`  (${where})`) : ''}${h.repeats ? dim(`  seen ${h.repeats + 1} times (retransmitted)`) : ''}`);
    for (const hook of h.hooks) {
      if (hook.note) {
        out.push(`  ${bold(hook.hook)}  ${yellow(hook.note)}`);
        continue;
      }
      out.push(`  ${bold(hook.hook)}${dim(`  ${hook.packet}`)}`);
      for (const rule of hook.rules) out.push(...ruleLines(rule));
      if (hook.policy) out.push(`    ${dim('(end of chain: policy')} ${hook.policy === 'DROP' ? red(hook.policy) : dim(hook.policy)}${dim(')')}`);
    }
    for (const n of h.notes) out.push(`  ${yellow('→')} ${n}`);
    if (h.fate === 'DROP') out.push(`  ${red('DROP: the packet ends here, and nothing is sent back')}`);
    if (h.fate === 'REJECT') out.push(`  ${red(`REJECT: the packet ends here, and ${h.host} sends ${h.rejectWith ?? 'an ICMP error'} back to ${h.packet.startsWith('[') ? h.packet.slice(1, h.packet.indexOf(']')) : h.packet.split(':')[0]}`)}`);
  }
  out.push(...dropLines(r));
  out.push('');
  const ok = r.hops.length > 0;
  out.push((ok ? green : red)(`trace ${r.lab}: ${r.hops.length} hops traced in ${r.ms} ms`));
  return out.join('\n');
}

/** Why it died: the kernel's drop reason (skb:kfree_skb), where, and the rule for a netfilter drop. */
export function dropLines(r: Pick<TraceView, 'drops' | 'dropsUnavailable'>): string[] {
  if (r.dropsUnavailable) return ['', dim(`drop reasons not watched: ${r.dropsUnavailable}`)];
  if (!r.drops?.length) return [];
  const out = ['', bold("why it died (the kernel's skb:kfree_skb drop reason)")];
  for (const d of r.drops) {
    const times = d.count > 1 ? dim(` (${d.count} times)`) : '';
    out.push(`  ${red(d.reason)} in ${bold(d.host)} (netns ${d.netns}${d.device ? `, on ${d.device}` : ''}), ${d.direction}: ${d.meaning}${times}`);
    out.push(`    ${dim(`at ${d.location}`)}`);
    if (d.rule) out.push(`    ${dim(`${d.rule.table} ${d.rule.chain}`)} ${d.rule.rule}${d.rule.comment ? dim(`  "${d.rule.comment}"`) : ''}`);
  }
  return out;
}
