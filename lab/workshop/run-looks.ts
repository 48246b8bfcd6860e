import type { ResultPromise } from 'execa';
import { join } from 'node:path';
import { startAttached } from '../kernel/attached.js';
import { descendants } from '../kernel/processes.js';
import { PROJECT_ROOT } from '../util/project.js';
import { lookCommand, type Look } from './schema.js';
import { fill, splitCommand } from './text.js';

/**
 * `run` at the workshop prompt: run a step's `lab …` commands for the learner, exactly as
 * they would type them (the same compiled CLI), output straight to the terminal.
 * A `background` command (a capture) is started first and stopped after the others ran.
 * Children never read stdin, so answers piped into the workshop stay for the workshop.
 */

const CLI = join(PROJECT_ROOT, 'dist', 'lab', 'cli', 'main.js');
const TIMEOUT_MS = 30_000;
const READY_MS = 5_000;
const DRAIN_MS = 2_000;

export interface RunOutput {
  write(text: string): void;
  dim?: (s: string) => string;
}

export async function runLooks(looks: Look[], lab: string, out: RunOutput): Promise<void> {
  const dim = out.dim ?? ((s: string) => s);
  const background: Capture[] = [];
  try {
    for (const l of looks.map(lookCommand)) {
      const cmd = fill(l.cmd, lab);
      const argv = splitCommand(cmd);
      if (!l.run || !argv || argv[0] !== 'lab') {
        out.write(dim(`  (run this one yourself: ${cmd})\n`));
        continue;
      }
      out.write(dim(`  $ ${cmd}\n`));
      if (l.background) {
        const capture = startCapture(startAttached(process.execPath, [CLI, ...argv.slice(1)], { timeoutMs: TIMEOUT_MS, pipeOutput: true }));
        background.push(capture);
        await capture.listening;
      } else {
        await startAttached(process.execPath, [CLI, ...argv.slice(1)], { timeoutMs: TIMEOUT_MS });
      }
    }
  } finally {
    for (const b of background) {
      await stop(b.child);
      b.close();
    }
  }
}

/**
 * A background capture whose output this process relays: its packets (stdout) as they come,
 * its stderr up to "listening on" at once, and the rest (tcpdump's "N packets captured" when it
 * is stopped) only after it ended, so it lands before the next prompt, never after it. Once
 * closed, nothing it (or a straggling child of it) writes reaches the terminal.
 */
interface Capture {
  child: ResultPromise;
  /** Resolves once it says "listening on", exits, or 5 s pass. */
  listening: Promise<void>;
  close(): void;
}

function startCapture(child: ResultPromise): Capture {
  let seen = '';
  let held = '';
  let open = true;
  const relayOut = (d: Buffer) => void (open && process.stdout.write(d));
  child.stdout?.on('data', relayOut);
  const listening = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, READY_MS);
    child.stderr?.on('data', (d: Buffer) => {
      if (!open) return;
      if (seen.includes('listening on')) {
        held += d.toString();
        return;
      }
      process.stderr.write(d);
      seen += d.toString();
      if (seen.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void child.finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  const close = () => {
    if (held) process.stderr.write(held);
    open = false;
    child.stdout?.destroy();
    child.stderr?.destroy();
  };
  return { child, listening, close };
}

/** Give a capture a moment to see the last packets and exit by itself (-c), then interrupt it and what it started. */
async function stop(child: ResultPromise): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const exited = await Promise.race([child.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), DRAIN_MS)))]);
  clearTimeout(timer);
  if (exited || child.pid === undefined) return;
  // `lab exec` runs tcpdump as its own child: interrupt tcpdump (by pid) and let `lab exec`
  // see it end and exit by itself; interrupt `lab exec` only if it started nothing, or hangs.
  const kids = descendants(child.pid);
  for (const pid of kids.reverse()) {
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      /* already gone */
    }
  }
  if (kids.length === 0) child.kill('SIGINT');
  const done = await Promise.race([child.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), DRAIN_MS)))]);
  clearTimeout(timer);
  if (!done) {
    // A hung capture: end it and what it started, so nothing of it outlives the step.
    for (const pid of [...kids, child.pid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  await child;
}
