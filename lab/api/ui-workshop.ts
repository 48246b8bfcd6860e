import { ExitCode, LabError } from '../errors.js';
import { hasWorkshop } from '../workshop/load.js';
import { runSession, type SessionIO } from '../workshop/session.js';
import { runningLab } from './running.js';
import { workshopSession, workshopSteps, workshopTarget, type WorkshopSteps } from './workshop.js';

/**
 * The workshop on the live page: the terminal's own session (lab/workshop/session.ts), with the
 * same live checks and the same progress file, its text sent to the page and its answers read
 * from the page instead of a terminal. `run` is not offered: the page never runs commands.
 */

export interface WebWorkshop {
  /** The transcript so far and the current prompt, for a page that connects now. */
  replay(): { event: string; data: unknown }[];
  /** A line the learner typed on the page. */
  answer(line: unknown): void;
}

const MAX_LINE = 200;
const MAX_TRANSCRIPT = 200_000;

export function startWebWorkshop(lab: string, emit: (event: string, data: unknown) => void): WebWorkshop | undefined {
  if (!hasWorkshop(runningLab(lab).path)) return undefined;
  let transcript = '';
  let prompt: string | undefined;
  const queued: string[] = [];
  let waiting: ((line: string | undefined) => void) | undefined;
  const steps = (): WorkshopSteps => workshopSteps(workshopTarget(lab));
  const io: SessionIO = {
    write(text) {
      transcript = (transcript + text).slice(-MAX_TRANSCRIPT);
      emit('workshop-text', text);
    },
    ask(p) {
      prompt = p;
      emit('workshop-prompt', p);
      const next = queued.shift();
      if (next !== undefined) return Promise.resolve(next);
      return new Promise((resolve) => (waiting = resolve));
    },
  };
  const setup = workshopSession(lab, false);
  void runSession({
    ...setup,
    lab,
    io,
    save: (p) => {
      setup.save(p);
      emit('workshop-steps', steps());
    },
    width: 80,
  }).then(
    () => emit('workshop-prompt', null),
    (err: unknown) => io.write(`\nthe workshop stopped: ${err instanceof Error ? err.message : String(err)}\n`),
  );
  return {
    replay: () => [
      { event: 'workshop-steps', data: steps() },
      { event: 'workshop-text', data: transcript },
      { event: 'workshop-prompt', data: prompt ?? null },
    ],
    answer(line) {
      if (typeof line !== 'string' || line.length > MAX_LINE || /[\r\n]/.test(line)) throw new LabError(`line: expected one line of at most ${MAX_LINE} characters`, ExitCode.badInput);
      // The page shows what was typed, as a terminal echoes it.
      io.write(`${prompt ?? ''}${line}\n`);
      prompt = undefined;
      if (waiting) {
        const w = waiting;
        waiting = undefined;
        w(line);
      } else queued.push(line);
    },
  };
}
