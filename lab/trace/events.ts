/**
 * The kernel's netfilter trace, as data. Both backends (xtables-monitor --trace for iptables
 * mode, nft monitor for nftables mode) are parsed into the same passes: one line about the
 * packet as a hook sees it, then the rules it met there in order.
 */

export type ProxyMode = 'iptables' | 'nftables';

/** The packet as one hook saw it (addresses before that hook's NAT). */
export interface PacketView {
  iif?: string;
  oif?: string;
  proto: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** tcpdump-style: S, S., … */
  flags: string;
  /** The TTL it arrived with: one less per router, so it orders hops along the path. */
  ttl?: number;
}

export interface TraceStep {
  table: string;
  chain: string;
  kind: 'rule' | 'policy' | 'return';
  /** ACCEPT, DROP, CONTINUE, JUMP, RETURN… (upper case, both backends) */
  verdict: string;
  /** For JUMP/GOTO: the chain jumped to. */
  target?: string;
  /** The rule as its tool prints it, without the table/chain prefix. */
  rule?: string;
  /** nft's handle of the rule, when the monitor printed it (`nft -a monitor`). */
  handle?: number;
}

/** One hook's look at one packet in one namespace. */
export interface TracePass {
  /** Milliseconds since the trace began, when the line arrived. */
  at: number;
  id: string;
  packet: PacketView;
  steps: TraceStep[];
}

/** What a monitor's output parses into: passes, and the lab's own rule events (for readiness). */
export interface MonitorParse {
  passes: TracePass[];
  /** Rule-add and rule-delete events that carry the trace's tag. */
  added: number;
  deleted: number;
}

const num = (s: string | undefined) => (s === undefined ? 0 : Number(s));

function tcpFlags(words: string[]): string {
  const has = (f: string) => words.includes(f);
  return `${has('SYN') ? 'S' : ''}${has('FIN') ? 'F' : ''}${has('RST') ? 'R' : ''}${has('PSH') ? 'P' : ''}${has('ACK') ? '.' : ''}`;
}

/** xtables-monitor prints the kernel's negative verdicts as numbers: NF_RETURN is -5. */
const xtVerdict = (v: string) => ({ '0XFFFFFFFB': 'RETURN', '0XFFFFFFFD': 'JUMP', '0XFFFFFFFC': 'GOTO', '0XFFFFFFFF': 'CONTINUE' })[v.toUpperCase()] ?? v.toUpperCase();

/** `xtables-monitor --trace --event` lines. */
export function parseXtablesMonitor(text: string, tag: string, stamps: number[] = []): MonitorParse {
  const out: MonitorParse = { passes: [], added: 0, deleted: 0 };
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const t = line.trim();
    if (t.startsWith('EVENT:') && t.includes(tag)) {
      if (/ -A /.test(t) || / -I /.test(t)) out.added++;
      else if (/ -D /.test(t)) out.deleted++;
      return;
    }
    let m = /^PACKET: \d+ ([0-9a-f]+) (.*)$/.exec(t);
    if (m) {
      const fields = Object.fromEntries([...m[2]!.matchAll(/(\w+)=(\S+)/g)].map((x) => [x[1]!, x[2]!]));
      const words = m[2]!.split(/\s+/);
      out.passes.push({
        at: stamps[i] ?? 0,
        id: m[1]!,
        packet: { iif: fields.IN || undefined, oif: fields.OUT || undefined, proto: words.includes('PROTO=UDP') ? 'udp' : 'tcp', src: fields.SRC ?? '', dst: fields.DST ?? '', sport: num(fields.SPORT), dport: num(fields.DPORT), flags: tcpFlags(words), ttl: num(fields.TTL ?? fields.HOPLIMIT) },
        steps: [],
      });
      return;
    }
    m = /^TRACE: \d+ ([0-9a-f]+) (\S+)\s*(.*)$/.exec(t);
    if (m) {
      const [table, chain, kind, ...rest] = m[2]!.split(':') as [string, string, string, ...string[]];
      // rule:<handle>:<VERDICT>[:<target>], policy:<VERDICT>, return:<…>
      const verdictParts = kind === 'rule' ? rest.slice(1) : rest;
      const rule = m[3]!.replace(/^-[46] -t \S+ -A \S+\s*/, '').trim();
      const pass = out.passes.at(-1);
      pass?.steps.push({ table, chain, kind: kind === 'policy' ? 'policy' : kind === 'return' ? 'return' : 'rule', verdict: xtVerdict(verdictParts[0] ?? ''), target: verdictParts[1], rule: rule || undefined });
    }
  });
  return out;
}

/** `nft monitor` lines (rule events and traces). */
export function parseNftMonitor(text: string, tag: string, stamps: number[] = []): MonitorParse {
  const out: MonitorParse = { passes: [], added: 0, deleted: 0 };
  text.split('\n').forEach((line, i) => {
    const t = line.trim();
    if (t.startsWith('add table') && t.includes(tag)) out.added++;
    if (t.startsWith('delete table') && t.includes(tag)) out.deleted++;
    // iptables mode over IPv6: ip6tables' TRACE rules arrive in ip6 raw as nftrace rules (nft prints no comment).
    if (/^add rule ip6 raw (PREROUTING|OUTPUT) .*meta nftrace set 1( # handle \d+)?$/.test(t)) out.added++;
    if (/^delete rule ip6 raw (PREROUTING|OUTPUT) /.test(t)) out.deleted++;
    const m = /^trace id ([0-9a-f]+) (\S+) (\S+) (\S+) (packet:|rule|policy|verdict|unknown rule)\s*(.*)$/.exec(t);
    if (!m) return;
    const [, id, , table, chain, what, rest] = m as unknown as [string, string, string, string, string, string, string];
    if (what === 'packet:') {
      const get = (re: RegExp) => re.exec(rest)?.[1];
      const flagText = get(/tcp flags == (\S+)/) ?? '';
      const bits = /^0x/.test(flagText) ? Number(flagText) : flagText.split('|').reduce((b, f) => b | ({ fin: 1, syn: 2, rst: 4, psh: 8, ack: 16 } as Record<string, number>)[f]!, 0);
      const flags = get(/tcp flags/) === undefined && !/tcp flags/.test(rest) ? '' : `${bits & 2 ? 'S' : ''}${bits & 1 ? 'F' : ''}${bits & 4 ? 'R' : ''}${bits & 8 ? 'P' : ''}${bits & 16 ? '.' : ''}`;
      const proto = /\budp sport\b/.test(rest) ? 'udp' : 'tcp';
      out.passes.push({
        at: stamps[i] ?? 0,
        id,
        packet: { iif: get(/iif "([^"]+)"/), oif: get(/oif "([^"]+)"/), proto, src: get(/ip6? saddr (\S+)/) ?? '', dst: get(/ip6? daddr (\S+)/) ?? '', sport: num(get(/(?:tcp|udp) sport (\d+)/)), dport: num(get(/(?:tcp|udp) dport (\d+)/)), flags, ttl: num(get(/ip ttl (\d+)/) ?? get(/ip6 hoplimit (\d+)/)) },
        steps: [],
      });
      return;
    }
    const pass = out.passes.at(-1);
    if (!pass) return;
    // "policy accept meta mark 0x00004000": the verdict, then the packet's mark.
    if (what === 'policy') pass.steps.push({ table, chain, kind: 'policy', verdict: rest.trim().split(/\s+/)[0]!.toUpperCase() });
    else if (what === 'verdict') pass.steps.push({ table, chain, kind: 'return', verdict: rest.trim().split(/\s+/)[0]!.toUpperCase() });
    else {
      const v = /\(verdict (\w+)(?: (\S+))?\)\s*$/.exec(rest);
      const handle = what === 'unknown rule' ? undefined : /# handle (\d+)\s*(?:\(verdict [^)]*\))?\s*$/.exec(rest)?.[1];
      const rule = rest.replace(/\(verdict [^)]*\)\s*$/, '').replace(/# handle \d+\s*$/, '').replace(/counter packets \d+ bytes \d+\s*/, '').replace(/\s+/g, ' ').trim();
      pass.steps.push({ table, chain, kind: 'rule', verdict: (v?.[1] ?? 'continue').toUpperCase(), target: v?.[2], rule: what === 'unknown rule' ? undefined : rule, ...(handle ? { handle: Number(handle) } : {}) });
    }
  });
  return out;
}
