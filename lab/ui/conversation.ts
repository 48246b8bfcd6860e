import { ExitCode, LabError } from '../errors.js';
import type { SessionIO } from '../workshop/session.js';

/**
 * A terminal conversation (the workshop's session, the break-and-fix challenge) held on the live
 * page instead: its text is sent to the page as `<name>-text` events, its prompt as
 * `<name>-prompt` (null once it ended), and the lines the learner types there are its answers.
 */

export interface PageConversation {
  io: SessionIO;
  /** The transcript so far and the current prompt, for a page that connects now. */
  replay(): { event: string; data: unknown }[];
  /** A line typed on the page: checked (one short line), echoed as a terminal does, answered. */
  answer(line: unknown): void;
  /** Is it waiting for a line? */
  asking(): boolean;
  /** It ended: the page's prompt goes. */
  end(): void;
}

const MAX_LINE = 200;
const MAX_TRANSCRIPT = 200_000;

export function pageConversation(name: string, emit: (event: string, data: unknown) => void): PageConversation {
  let transcript = '';
  let prompt: string | undefined;
  let ended = false;
  const queued: string[] = [];
  let waiting: ((line: string | undefined) => void) | undefined;
  const io: SessionIO = {
    write(text) {
      transcript = (transcript + text).slice(-MAX_TRANSCRIPT);
      emit(`${name}-text`, text);
    },
    ask(p) {
      prompt = p;
      emit(`${name}-prompt`, p);
      const next = queued.shift();
      if (next !== undefined) return Promise.resolve(next);
      return new Promise((resolve) => (waiting = resolve));
    },
  };
  return {
    io,
    replay: () => [
      { event: `${name}-text`, data: transcript },
      { event: `${name}-prompt`, data: ended ? null : prompt ?? null },
    ],
    answer(line) {
      if (typeof line !== 'string' || line.length > MAX_LINE || /[\r\n]/.test(line)) throw new LabError(`line: expected one line of at most ${MAX_LINE} characters`, ExitCode.badInput);
      if (ended) throw new LabError(`the ${name} has ended`, ExitCode.labState);
      // The page shows what was typed, as a terminal echoes it.
      io.write(`${prompt ?? ''}${line}\n`);
      prompt = undefined;
      if (waiting) {
        const w = waiting;
        waiting = undefined;
        w(line);
      } else queued.push(line);
    },
    asking: () => waiting !== undefined,
    end() {
      ended = true;
      prompt = undefined;
      emit(`${name}-prompt`, null);
    },
  };
}
