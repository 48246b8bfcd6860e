import { ExitCode, LabError } from '../errors.js';
import { bridgeNfCallIptables, routeLocalnet, rpFilterStrict, type Fault, type FaultContext } from './catalogue.js';
import { podRouteGone, serviceChainEmptied } from './network-faults.js';
import { mtuMismatch, staleDnsConntrack } from './pod-faults.js';

/** Every fault `lab break` knows, in the order `lab break --list` shows them. */
export const FAULTS: readonly Fault[] = [bridgeNfCallIptables, routeLocalnet, podRouteGone, serviceChainEmptied, mtuMismatch, staleDnsConntrack, rpFilterStrict];

/** What `lab break --list --json` prints for each fault: scripts rely on name and description. */
export const faultListing = () => FAULTS.map((f) => ({ name: f.name, description: f.description, appliesTo: f.where }));

/** The fault of this name, applicable to this lab; otherwise exit 2 saying why, and which faults do apply. */
export function applicableFault(name: string, c: FaultContext, lab: string): Fault {
  const fault = FAULTS.find((f) => f.name === name);
  const apply = applicableFaults(c).map((f) => f.name);
  const those = apply.length ? `faults that apply to lab ${lab}: ${apply.join(', ')}` : `no fault applies to lab ${lab}`;
  if (!fault) throw new LabError(`no fault named "${name}" (known: ${FAULTS.map((f) => f.name).join(', ')}; ${those})`, ExitCode.badInput);
  const why = fault.refusal(c);
  if (why) throw new LabError(`fault ${name} does not apply to lab ${lab}: ${why} (${those})`, ExitCode.badInput);
  return fault;
}

export const applicableFaults = (c: FaultContext): Fault[] => FAULTS.filter((f) => !f.refusal(c));

/** A learner's diagnosis, a number from the list or words, matched to a fault. Pure. */
export function matchDiagnosis(answer: string, choices: readonly Fault[]): Fault | undefined {
  const a = answer.trim().toLowerCase();
  if (/^\d+$/.test(a)) return choices[Number(a) - 1];
  const byName = choices.find((f) => a === f.name);
  if (byName) return byName;
  // The fault whose words the answer uses most; none, or a tie, is no match.
  const scored = choices.map((f) => ({ f, n: f.keywords.filter((k) => a.includes(k.toLowerCase())).length })).sort((x, y) => y.n - x.n);
  return scored[0] && scored[0].n > 0 && scored[0].n !== scored[1]?.n ? scored[0].f : undefined;
}
