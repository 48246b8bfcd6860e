import { ExitCode, LabError } from '../errors.js';
import { runIn } from './exec.js';
/**
 * The one owner of the source ports the lab's own requests leave from (verify, probe, trace,
 * the workshop). Each connection gets a fixed, known port, so it can be found again in every
 * capture, in conntrack and in a trace rule. The range lies below the kernel's ephemeral ports
 * (32768-60999), so a learner's own curl never uses one, and "the learner's last connection"
 * is simply one whose port is outside it.
 */
export const LAB_SOURCE_PORTS = { from: 10000, to: 32767 } as const;

const SPAN = LAB_SOURCE_PORTS.to - LAB_SOURCE_PORTS.from + 1;

export const isLabSourcePort = (port: number) => port >= LAB_SOURCE_PORTS.from && port <= LAB_SOURCE_PORTS.to;

// A random start per process keeps a run's connections apart from an earlier run's still in
// TIME_WAIT, and two verbs running at once on one lab apart from each other.
let next = LAB_SOURCE_PORTS.from + Math.floor(Math.random() * SPAN);

/**
 * The next lab source port (wrapping inside the range), skipping `inUse` (the sender's ports,
 * from `portsInUse`) and recording the one it returns there. Without the skip, a port an earlier
 * run's connection still holds in TIME_WAIT made curl fail: "bind failed with errno 98".
 */
export function nextSourcePort(inUse: Set<number> = new Set()): number {
  for (let tries = 0; tries < SPAN; tries++) {
    const port = next;
    next = next + 1 > LAB_SOURCE_PORTS.to ? LAB_SOURCE_PORTS.from : next + 1;
    if (!inUse.has(port)) {
      inUse.add(port);
      return port;
    }
  }
  throw new LabError(`every lab source port (${LAB_SOURCE_PORTS.from}-${LAB_SOURCE_PORTS.to}) is in use`, ExitCode.commandFailed);
}

/** The local TCP and UDP ports of every socket in a namespace, TIME_WAIT included (one `ss`). */
export async function portsInUse(ns: string): Promise<Set<number>> {
  const { stdout } = await runIn(ns, 'ss', ['-Htuan']);
  const ports = new Set<number>();
  for (const line of stdout.split('\n')) {
    const local = line.trim().split(/\s+/)[4];
    const port = Number(local?.slice(local.lastIndexOf(':') + 1));
    if (Number.isInteger(port) && port > 0) ports.add(port);
  }
  return ports;
}

/**
 * A connection the lab's own requests made (verify, probe, trace, the workshop's checks), told
 * from a learner's by its original source port. Not when the source is an address another node
 * translated to (`relayedSources`: node addresses, flannel.1's): there the port is the other
 * node's SNAT choice, which may fall in the range whoever sent the request.
 */
export function isLabOwnConnection(e: { original: { src: string; sport: number } }, relayedSources: ReadonlySet<string>): boolean {
  return isLabSourcePort(e.original.sport) && !relayedSources.has(e.original.src);
}
