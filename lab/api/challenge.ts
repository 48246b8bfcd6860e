import { runChallenge, saveChallenge, type ChallengeRecord } from '../workshop/challenge.js';
import type { SessionIO, Style } from '../workshop/session.js';
import { faultFixed, repairFault, startChallenge } from './break.js';

/**
 * A break-and-fix challenge, wired once for the terminal (`lab workshop <lab> --challenge`) and
 * the live page: the fault put in (named, or random), then the conversation of
 * lab/workshop/challenge.ts, the fix judged against the live kernel, and its record saved after
 * every change (so `lab class status` sees it while it runs) and at its end.
 */
export async function beginChallenge(lab: string, fault: string | undefined): Promise<{ play(io: SessionIO, o?: { style?: Style; width?: number; onChange?: (rec: ChallengeRecord) => void }): Promise<ChallengeRecord> }> {
  const { choices, plan } = await startChallenge(lab, fault);
  return {
    async play(io, o = {}) {
      const rec = await runChallenge({
        lab,
        choices,
        plan,
        io,
        fixed: () => faultFixed(lab, plan),
        repair: () => repairFault(lab, plan.fault),
        onChange: (r) => {
          saveChallenge(lab, r);
          o.onChange?.(r);
        },
        style: o.style,
        width: o.width,
      });
      saveChallenge(lab, rec);
      return rec;
    },
  };
}
