import { MAX_AFFINITY_WAIT_S, type AffinityEntry, type AffinityExpiry } from '../kernel/affinity.js';

/**
 * sessionAffinityConfig.clientIP.timeoutSeconds on the wire: what a verify run records around a
 * traffic series sent after the kernel forgot its sender (traffic.afterAffinityExpiry), and the
 * pure judge of the `affinityExpired` check.
 */
export interface AffinityWaitEvidence extends AffinityExpiry {
  node: string;
  client: string;
  /** The client's entries after this traffic's requests. */
  after: AffinityEntry[];
  /** iptables mode: the affinity (--rcheck) rules' packet counters at the start of the run, and after this traffic. */
  hitsAtRunStart?: number;
  hitsAfter?: number;
}

const describe = (e: AffinityEntry, timeoutS: number) =>
  `${e.set} (${e.endpoint}) held ${e.client}${e.ageS !== undefined ? `, last seen ${e.ageS} s ago` : ''}${e.expiresS !== undefined ? `, expiring in ${e.expiresS} s` : ''} (timeout ${timeoutS} s)`;

/**
 * Passes when, on node `at`: the client was remembered when the wait began (and, in iptables mode,
 * the affinity rules had matched its earlier connections); the kernel forgot it before the
 * deadline; the first connection afterwards found no affinity to follow (iptables: the --rcheck
 * rules' counters did not count it, only the later ones of the series; nftables: no set held the
 * client when it was sent) and was balanced afresh; and the client is remembered again, in one
 * set, by a fresh entry. Pure.
 */
export function judgeAffinityExpired(client: string, at: string, w: AffinityWaitEvidence | undefined, requests: number): { ok: boolean; expected: string; seen: string } {
  const expected = `${at} remembers ${client}, forgets it after the timeout, and its next connection is balanced afresh`;
  const fail = (seen: string) => ({ ok: false, expected, seen });
  if (!w || w.node !== at || w.client !== client) return fail(`no wait for ${client}'s affinity to expire on ${at} before this traffic (traffic.afterAffinityExpiry: ${at})`);
  const before = w.before.map((e) => describe(e, w.timeoutS)).join('; ');
  if (w.before.length === 0) return fail(`${at} did not remember ${client} when the wait began: nothing to expire (send sticky traffic first)`);
  if (w.tooLong) return fail(`${before}; a ${w.timeoutS} s timeout is longer than verify waits (${MAX_AFFINITY_WAIT_S} s): lab up with --set services.<name>.sessionAffinityTimeoutSeconds=3`);
  if (!w.expired && w.affinityHits !== undefined && w.hz === undefined) return fail(`${before}; the kernel's tick rate could not be read from /proc/timer_list, so the age of the entry is unknown`);
  if (!w.expired) return fail(`${before}; still remembered after ${w.waitedMs} ms (${w.polls} polls), the deadline`);
  const parts = [before, `forgotten after ${(w.waitedMs / 1000).toFixed(1)} s (${w.polls} polls of the kernel's state)`];
  const iptables = w.hitsAfter !== undefined && w.affinityHits !== undefined;
  let ok = true;
  if (iptables) {
    const sticky = w.affinityHits! - (w.hitsAtRunStart ?? 0);
    const fresh = w.hitsAfter! - w.affinityHits!;
    parts.splice(1, 0, `the affinity rules matched ${sticky} earlier connections`);
    parts.push(`then the affinity rules counted ${fresh} of ${requests} connections (the first was balanced by the statistic rules)`);
    ok &&= sticky > 0 && fresh === requests - 1;
  } else {
    parts.push('the first new connection found no element to match');
  }
  const oldest = Math.max(0, ...w.before.flatMap((e) => e.stamps ?? []));
  const again = w.after.filter((e) => e.client === client);
  const fresh = again.length === 1 && (!iptables || Math.min(...(again[0]!.stamps ?? [0])) > oldest);
  parts.push(again.length ? `now ${again.map((e) => `${e.set} (${e.endpoint})`).join(', ')} ${fresh ? 'holds a fresh entry' : 'holds an old entry'}` : `${client} is in no set afterwards`);
  return { ok: ok && fresh, expected, seen: parts.join('; ') };
}
