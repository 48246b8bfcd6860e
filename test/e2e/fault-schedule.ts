import { seededRandom } from '../../scripts/fuzz-pods.js';

/**
 * The schedule of test/e2e/fault-injection.test.ts: a pure function of a seed and a number of
 * rounds, so a failing round is replayed from its seed. Each round runs one verb on the lab,
 * maybe signals it after a delay, maybe starts a second verb on the same lab meanwhile, and
 * maybe edits one of the lab's files first.
 *
 * Each kind of fault is dealt from its own shuffled deck, refilled when empty: every kind comes
 * up once per deck, so a short run still meets them all, in an order the seed decides. The
 * schedule of k rounds is the first k rounds of a longer one, so `LAB_FAULT_ROUNDS=k` stops a
 * replay at the round that failed.
 */

export const VERBS = ['up', 'down', 'scale', 'kill', 'revive', 'verify', 'trace', 'capture', 'status'] as const;
export const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGKILL'] as const;
/** Edits of the state file (`state-…`) and of the topology file the lab was brought up from. */
export const EDITS = ['state-truncate', 'state-foreign-pid', 'state-foreign-namespace', 'state-phase', 'state-other-lab', 'topology-other-lab'] as const;

export type VerbName = (typeof VERBS)[number];
export type FaultSignal = (typeof SIGNALS)[number];
export type EditKind = (typeof EDITS)[number];

/** Where an `up` reads the lab from: the built-in scenario with --name, or a copy of it naming the lab. */
export type UpFrom = 'builtin' | 'file';

export interface Verb {
  verb: VerbName;
  /** up: which topology. */
  from?: UpFrom;
  /** scale: web=<replicas>. */
  replicas?: number;
  /** kill, revive: web-<n>. */
  pod?: string;
  /** capture: --duration. */
  seconds?: number;
}

export interface Edit {
  kind: EditKind;
  /** state-truncate: where to cut, as a fraction of the file's length. */
  at?: number;
}

/**
 * What the lab must be before a round: down (the round's verb is `up`, so it really builds),
 * up (built, if it is not, from `upFrom`), or up from the topology file (the round edits that file).
 */
export type Start = 'down' | 'up' | 'up-from-file';

export interface Round {
  /** 1-based, as reported. */
  index: number;
  start: Start;
  upFrom: UpFrom;
  edit?: Edit;
  verb: Verb;
  /** Sent to the verb's pid after afterMs (if it is still running then). */
  signal?: { name: FaultSignal; afterMs: number };
  /** A second verb on the same lab, started afterMs after the first. */
  concurrent?: { verb: Verb; afterMs: number };
}

type Random = () => number;
const int = (r: Random, max: number) => Math.floor(r() * max);
const pick = <T>(r: Random, xs: readonly T[]): T => xs[int(r, xs.length)]!;

function shuffled<T>(r: Random, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = int(r, i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Draw from `items` without putting back; a new shuffle when all were drawn. */
function deck<T>(r: Random, items: readonly T[]): () => T {
  let hand: T[] = [];
  return () => {
    if (hand.length === 0) hand = shuffled(r, items);
    return hand.pop()!;
  };
}

const NONE = 'none' as const;
/** Scale targets: mostly 1-4; 9 would need web-9, a name the suite gives a foreign namespace. */
const REPLICAS = [1, 2, 3, 4, 4, 9];

function verbOf(r: Random, name: VerbName, from: UpFrom): Verb {
  switch (name) {
    case 'up':
      return { verb: name, from };
    case 'scale':
      return { verb: name, replicas: pick(r, REPLICAS) };
    case 'kill':
    case 'revive':
      return { verb: name, pod: `web-${1 + int(r, 4)}` };
    case 'capture':
      return { verb: name, seconds: 1 + int(r, 3) };
    default:
      return { verb: name };
  }
}

/** Seed → rounds. Pure: the same seed always gives the same rounds. */
export function faultSchedule(seed: number, rounds: number): Round[] {
  const r = seededRandom(seed);
  const verbs = deck(r, VERBS);
  const signals = deck<FaultSignal | typeof NONE>(r, [...SIGNALS, NONE, NONE]);
  const partners = deck<VerbName | typeof NONE>(r, [...VERBS, NONE, NONE, NONE]);
  const edits = deck<EditKind | typeof NONE>(r, [...EDITS, NONE, NONE, NONE, NONE, NONE, NONE]);
  const schedule: Round[] = [];
  for (let index = 1; index <= rounds; index++) {
    const editKind = edits();
    const editsTopology = editKind === 'topology-other-lab';
    // An up from the edited file would build the other lab it now names: that round's ups use the built-in scenario.
    const upFrom: UpFrom = editsTopology ? 'file' : pick(r, ['builtin', 'file'] as const);
    const verbFrom: UpFrom = editsTopology ? 'builtin' : upFrom;
    const verb = verbOf(r, verbs(), verbFrom);
    const signalName = signals();
    const second = partners();
    schedule.push({
      index,
      start: verb.verb === 'up' ? 'down' : editsTopology ? 'up-from-file' : 'up',
      upFrom,
      ...(editKind === NONE ? {} : { edit: { kind: editKind, ...(editKind === 'state-truncate' ? { at: r() } : {}) } }),
      verb,
      ...(signalName === NONE ? {} : { signal: { name: signalName, afterMs: int(r, 2500) } }),
      ...(second === NONE ? {} : { concurrent: { verb: verbOf(r, second, verbFrom), afterMs: int(r, 1500) } }),
    });
  }
  return schedule;
}

/** The kinds of fault a round exercises, e.g. verb:scale, signal:SIGKILL, concurrent:none, edit:state-phase. */
export function faultKinds(round: Round): string[] {
  return [
    `verb:${round.verb.verb}`,
    `signal:${round.signal?.name ?? NONE}`,
    `concurrent:${round.concurrent?.verb.verb ?? NONE}`,
    `edit:${round.edit?.kind ?? NONE}`,
  ];
}

/** Every kind faultKinds can name. */
export const ALL_FAULT_KINDS: readonly string[] = [
  ...VERBS.map((v) => `verb:${v}`),
  ...[...SIGNALS, NONE].map((s) => `signal:${s}`),
  ...[...VERBS, NONE].map((v) => `concurrent:${v}`),
  ...[...EDITS, NONE].map((e) => `edit:${e}`),
];

/** A verb as a person would type it after `lab` (the topology file and output folders are the caller's). */
export function verbText(v: Verb): string {
  switch (v.verb) {
    case 'up':
      return v.from === 'file' ? 'up <file>' : 'up nodeport --name <lab>';
    case 'scale':
      return `scale web=${v.replicas}`;
    case 'kill':
    case 'revive':
      return `${v.verb} ${v.pod}`;
    case 'capture':
      return `capture node1 --duration ${v.seconds}`;
    default:
      return v.verb;
  }
}

/** One line saying what a round does, for reports. */
export function describeRound(round: Round): string {
  const parts = [`start ${round.start}${round.start === 'up' ? ` (from ${round.upFrom})` : ''}`];
  if (round.edit) parts.push(`edit ${round.edit.kind}${round.edit.at !== undefined ? ` at ${round.edit.at.toFixed(2)}` : ''}`);
  parts.push(`verb "${verbText(round.verb)}"`);
  if (round.signal) parts.push(`${round.signal.name} after ${round.signal.afterMs} ms`);
  if (round.concurrent) parts.push(`with "${verbText(round.concurrent.verb)}" after ${round.concurrent.afterMs} ms`);
  return parts.join(', ');
}
