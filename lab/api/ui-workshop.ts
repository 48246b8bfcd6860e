import { hasWorkshop } from '../workshop/load.js';
import { runSession } from '../workshop/session.js';
import { pageConversation } from '../ui/conversation.js';
import { runningLab } from './running.js';
import { workshopSession, workshopSteps, workshopTarget, type WorkshopSteps } from './workshop.js';

/**
 * The workshop on the live page: the terminal's own session (lab/workshop/session.ts), with the
 * same live checks and the same progress file, its text sent to the page and its answers read
 * from the page instead of a terminal. `run` is not offered: the page never runs commands.
 */

export interface WebWorkshop {
  /** The steps, the transcript so far and the current prompt, for a page that connects now. */
  replay(): { event: string; data: unknown }[];
  /** A line the learner typed on the page. */
  answer(line: unknown): void;
}

export function startWebWorkshop(lab: string, emit: (event: string, data: unknown) => void): WebWorkshop | undefined {
  if (!hasWorkshop(runningLab(lab).path)) return undefined;
  const talk = pageConversation('workshop', emit);
  const steps = (): WorkshopSteps => workshopSteps(workshopTarget(lab));
  const setup = workshopSession(lab, false);
  void runSession({
    ...setup,
    lab,
    io: talk.io,
    save: (p) => {
      setup.save(p);
      emit('workshop-steps', steps());
    },
    width: 80,
  }).then(
    () => talk.end(),
    (err: unknown) => talk.io.write(`\nthe workshop stopped: ${err instanceof Error ? err.message : String(err)}\n`),
  );
  return {
    replay: () => [{ event: 'workshop-steps', data: steps() }, ...talk.replay()],
    answer: (line) => talk.answer(line),
  };
}
