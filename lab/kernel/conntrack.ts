import { runIn } from './exec.js';

export interface Tuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

export interface ConntrackEntry {
  protocol: string;
  state: string;
  original: Tuple;
  reply: Tuple;
  text: string;
}

/**
 * Parse `conntrack -L` lines, e.g.
 * tcp 6 119 TIME_WAIT src=10.241.0.4 dst=10.240.0.4 sport=41030 dport=32000 src=10.244.1.2 dst=10.240.0.4 sport=8443 dport=14124 [ASSURED] mark=0 use=1
 */
export function parseConntrack(text: string): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words.length < 4) continue;
    const values: Record<string, string[]> = {};
    for (const w of words) {
      const m = /^(src|dst|sport|dport)=(.+)$/.exec(w);
      if (m) (values[m[1]!] ??= []).push(m[2]!);
    }
    if (!values.src || values.src.length < 2 || !values.dst || !values.sport || !values.dport) continue;
    const tuple = (i: number): Tuple => ({ src: values.src![i]!, dst: values.dst![i]!, sport: Number(values.sport![i]), dport: Number(values.dport![i]) });
    const state = words.find((w) => /^[A-Z_]+$/.test(w) && !w.startsWith('[')) ?? '';
    out.push({ protocol: words[0]!, state, original: tuple(0), reply: tuple(1), text: line.trim() });
  }
  return out;
}

/**
 * Delete the entries one `conntrack -D` filter matches (the arguments of
 * plan/kube-proxy/conntrack-cleanup.ts's filterArgs). Returns how many were deleted.
 */
export async function deleteEntries(ns: string, args: string[]): Promise<number> {
  const { stdout, stderr } = await runIn(ns, 'conntrack', args, { allowFailure: true });
  const m = /(\d+) flow entries have been deleted/.exec(`${stdout}\n${stderr}`);
  return m ? Number(m[1]) : 0;
}
