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

/** The next lab source port (wrapping inside the range). */
export function nextSourcePort(): number {
  const port = next;
  next = next + 1 > LAB_SOURCE_PORTS.to ? LAB_SOURCE_PORTS.from : next + 1;
  return port;
}
