import { join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';
import { listNamespaces } from '../kernel/netns.js';
import { lockWaitSeconds, withFileLock } from './lock.js';
import { listStates, STATE_ROOT } from './store.js';

/**
 * A namespace is named <lab>-<host>, and both names may hold "-", so two labs can want one name
 * (lab "pa" with host "b-node1", lab "pa-b" with host "node1"). Names are therefore claimed, not
 * assumed: under one machine-wide lock, a lab records a namespace in its state only if no
 * namespace of that name exists and no other lab's state records it. Whoever records it first
 * owns it; the other is refused before it creates anything. The lock is held for the check and
 * the record only (milliseconds), never while namespaces are built.
 */
const claimLock = () => join(STATE_ROOT, 'namespaces.lock');

export interface NamespaceClash {
  ns: string;
  /** The other lab whose state records it, or undefined when it simply exists on the machine. */
  lab?: string;
}

/** Names among `wanted` that exist already or that another lab's state records. */
export async function namespaceClashes(lab: string, wanted: readonly string[]): Promise<NamespaceClash[]> {
  const existing = new Set(await listNamespaces());
  const recorded = new Map<string, string>();
  for (const s of listStates()) if (s.lab !== lab) for (const ns of s.namespaces) recorded.set(ns, s.lab);
  return wanted.filter((ns) => existing.has(ns) || recorded.has(ns)).map((ns) => ({ ns, ...(recorded.has(ns) ? { lab: recorded.get(ns) } : {}) }));
}

/** Run `check` then `record` holding the claim lock, so no other lab claims the same names in between. */
export function withNamespaceClaims<T>(fn: () => Promise<T>): Promise<T> {
  const busy = () => new LabError(`another lab command holds ${claimLock()} (waited ${lockWaitSeconds()} s; LAB_LOCK_WAIT sets how long)`, ExitCode.labState);
  return withFileLock(claimLock(), lockWaitSeconds(), busy, fn);
}

/** The refusal for clashing names: which other lab holds each, or that it exists and is nobody's the lab knows. */
export function clashError(lab: string, clashes: NamespaceClash[]): LabError {
  const ofOthers = clashes.filter((c) => c.lab !== undefined);
  const foreign = clashes.filter((c) => c.lab === undefined).map((c) => c.ns);
  const parts: string[] = [];
  if (foreign.length > 0) {
    const one = foreign.length === 1;
    parts.push(`namespace${one ? '' : 's'} ${foreign.join(', ')} already exist${one ? 's' : ''} and ${one ? 'is' : 'are'} not lab ${lab}'s, so "lab down" will not remove ${one ? 'it' : 'them'}: remove ${one ? 'it' : 'them'} yourself if nothing uses ${one ? 'it' : 'them'}`);
  }
  for (const c of ofOthers) parts.push(`namespace ${c.ns} belongs to lab ${c.lab} (the two names overlap)`);
  return new LabError(`${parts.join('; ')}; pick another ${ofOthers.length > 0 ? 'lab or pod' : 'lab'} name (--name)`, ExitCode.labState, { clashes });
}
