import { ExitCode, LabError } from '../errors.js';
import { readState } from '../state/store.js';
import { pageConversation, type PageConversation } from '../ui/conversation.js';
import { latestChallenge, readChallenges, type ChallengeView } from '../workshop/challenge.js';
import { faultsFor, repairLab, type BreakResult } from './break.js';
import { beginChallenge } from './challenge.js';

/**
 * The break-and-fix challenges on the live page: the terminal's own challenge
 * (lab/workshop/challenge.ts, as `lab workshop <lab> --challenge` runs it) and the lab's own
 * break and repair (lab/api/break.ts). The page picks a fault by name from the lab's list (or
 * random), and sends the learner's lines; the learner fixes the lab with `lab exec` in a
 * terminal, and the fix is judged against the live kernel, as in the terminal.
 */

export interface FaultRow {
  name: string;
  description: string;
}

/** What the page shows of the lab's faults: those in now (a running challenge's hidden), and the challenge. */
export interface BreakState {
  faults: { fault: string; summary: string }[];
  /** Faults in that the page does not name: a challenge's, still to be found. */
  hidden: number;
  /** The latest challenge; its fault and host left out while they are hidden. */
  challenge?: Omit<ChallengeView, 'fault' | 'host'> & { fault?: string; host?: string; onPage: boolean };
}

export interface WebChallenges {
  /** The faults that apply to this lab (`lab break --list <lab>`). */
  faults: FaultRow[];
  start(body: unknown): Promise<{ started: true }>;
  answer(line: unknown): void;
  /** Undo every fault in (`lab repair`); a challenge on the page ends as given up. */
  repair(): Promise<BreakResult[]>;
  state(): BreakState;
  replay(): { event: string; data: unknown }[];
}

export function breakState(lab: string, onPage: boolean): BreakState {
  const faultsIn = readState(lab)?.faults ?? [];
  const view = latestChallenge(readChallenges(lab), faultsIn.map((f) => f.fault));
  const hide = view && view.outcome === 'in-progress' && view.hidden ? view.fault : undefined;
  const shown = faultsIn.filter((f) => f.fault !== hide).map((f) => ({ fault: f.fault, summary: f.summary }));
  if (!view) return { faults: shown, hidden: faultsIn.length - shown.length };
  const { fault, host, ...rest } = view;
  return { faults: shown, hidden: faultsIn.length - shown.length, challenge: { ...rest, ...(view.hidden ? {} : { fault, host }), onPage } };
}

export function webChallenges(lab: string, emit: (event: string, data: unknown) => void): WebChallenges {
  const faults = faultsFor(lab).map((f) => ({ name: f.name, description: f.description }));
  let talk: PageConversation | undefined;
  let running = false;
  const pushState = () => emit('break-state', breakState(lab, running));
  return {
    faults,
    async start(body) {
      const asked = (body as { fault?: unknown } | undefined)?.fault;
      const name = asked === undefined || asked === '' ? 'random' : asked;
      if (typeof name !== 'string' || (name !== 'random' && !faults.some((f) => f.name === name))) {
        throw new LabError(`fault: expected random or one of ${faults.map((f) => f.name).join(', ') || '(no fault applies to this lab)'}`, ExitCode.badInput);
      }
      if (running) throw new LabError('a challenge is on already: finish it (or give up) first', ExitCode.labState);
      running = true;
      try {
        const game = await beginChallenge(lab, name);
        talk = pageConversation('challenge', emit);
        emit('challenge-text', null); // a new transcript
        const t = talk;
        void game
          .play(t.io, { onChange: pushState, width: 80 })
          .catch((err: unknown) => t.io.write(`\nthe challenge stopped: ${err instanceof Error ? err.message : String(err)}\n`))
          .finally(() => {
            running = false;
            t.end();
            pushState();
          });
      } catch (err) {
        running = false;
        throw err;
      }
      pushState();
      return { started: true };
    },
    answer(line) {
      if (!talk || !running) throw new LabError('no challenge is on: start one first', ExitCode.labState);
      talk.answer(line);
    },
    async repair() {
      const done = await repairLab(lab);
      // The challenge's fault is gone: it ends, the fault shown, as when the learner gives up.
      if (running && talk) talk.answer('skip');
      pushState();
      return done;
    },
    state: () => breakState(lab, running),
    replay: () => talk?.replay() ?? [],
  };
}
