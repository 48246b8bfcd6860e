/**
 * Words for what a failed step could not show: a flow variable no request resolved ("$snat"
 * becomes "the SNAT address"), and, for a path no request took, what became of the requests
 * that were sent. Pure.
 */

/** What the traffic generator recorded of one request (a Flow). */
export interface SentRequest {
  answer?: { pod: string };
  error?: string;
  /** Its source ip:port, by which the run's kernel drops are kept. */
  client?: string;
}

/** A kernel drop of a request, as the verify drop trace tied it (lab/verify/drops-seen.ts). */
export interface RequestDrop {
  reason: string;
  meaning: string;
  host: string;
  device?: string;
}

const VARIABLE_WORDS: Record<string, string> = {
  client: "the client's",
  target: "the requested service's",
  pod: "the pod's",
  snat: 'the SNAT',
};

/** "$client" → "the client's address", "$snat.ip" → "the SNAT IP"; a pattern that is no variable stays as written. */
export function patternWords(raw: string): string {
  const m = /^\$([a-z]+)(\.ip)?(:\*)?$/.exec(raw);
  if (!m) return raw;
  const whose = VARIABLE_WORDS[m[1]!] ?? `the ${m[1]}'s`;
  return `${whose} ${m[2] || m[3] ? 'IP' : 'address'}`;
}

/** Why a request went unanswered, in a few words, from curl's message. */
export function failureKind(error: string | undefined): string {
  const e = error ?? '';
  if (/timed out|\(28\)/i.test(e)) return 'timed out';
  if (/refused|\(7\)/i.test(e)) return 'connection refused';
  if (/reset|\(56\)/i.test(e)) return 'connection reset';
  if (/empty reply|\(52\)/i.test(e)) return 'empty reply';
  if (/no route|unreachable/i.test(e)) return 'no route';
  return e ? e.replace(/^curl: \(\d+\)\s*/, '').slice(0, 60) : 'no answer';
}

/** Counts of each value, most first; a tie in name order, so the words do not depend on arrival order. */
const tally = (xs: string[]) => [...xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>())].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));

/**
 * What the traffic generator recorded for a path no request took: "0 of 40 requests answered:
 * 40 timed out", or "none of 12 requests took this path: 12 answered (web-1 12)".
 */
export function unseenPathText(groupFlows: SentRequest[], drops: Record<string, RequestDrop[]> = {}): string {
  const n = groupFlows.length;
  if (n === 0) return 'no request of this path was sent';
  const answered = groupFlows.filter((f) => f.answer);
  const failures = tally(groupFlows.filter((f) => !f.answer).map((f) => failureKind(f.error)));
  const failed = failures.map(([why, k]) => `${k} ${why}`).join(', ');
  if (answered.length === 0) return `0 of ${n} requests answered: ${failed}${droppedText(groupFlows, drops)}`;
  const by = tally(answered.map((f) => f.answer!.pod)).map(([pod, k]) => `${pod} ${k}`).join(', ');
  return `none of ${n} requests took this path: ${answered.length} answered (${by})${failed ? `, ${failed}` : ''}${droppedText(groupFlows, drops)}`;
}

/**
 * Where the kernel dropped the unanswered requests, the most common place first (each request
 * counted once per place): "; the kernel dropped 40 at node1 eth0: IP_RPFILTER (the
 * reverse-path filter refused its source)". Only places that dropped at least half of them: the
 * trace's window around a request also holds the odd unrelated drop (a NOT_SPECIFIED one on
 * another host). Nothing when the drop trace saw none.
 */
function droppedText(groupFlows: SentRequest[], drops: Record<string, RequestDrop[]>): string {
  const meaning = new Map<string, string>();
  const places = groupFlows.flatMap((f) => {
    const seen = new Set((f.answer || !f.client ? [] : (drops[f.client] ?? [])).map((d) => {
      const key = `${d.host}${d.device ? ` ${d.device}` : ''}: ${d.reason}`;
      meaning.set(key, d.meaning);
      return key;
    }));
    return [...seen];
  });
  const unanswered = groupFlows.filter((f) => !f.answer).length;
  const most = tally(places).filter(([, k]) => k * 2 >= unanswered);
  if (most.length === 0) return '';
  return `; the kernel dropped ${most.slice(0, 2).map(([where, k]) => `${k} at ${where} (${meaning.get(where)})`).join(', ')}`;
}
