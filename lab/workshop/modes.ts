import type { PodNetworkMode, ProxyMode } from '../topology/schema.js';
import type { StepVariant, Workshop, WorkshopStep } from './schema.js';

/**
 * One workshop file, every mode of the lab: a step may exist only in some modes (`proxyModes`,
 * `podNetworks`) and read differently in others (`nftables: {…}`, `podNetwork: { vxlan: {…} }`).
 * The lab's modes pick the steps a learner is asked. Pure.
 */

export interface LabModes {
  proxy: ProxyMode;
  podNetwork: PodNetworkMode;
}

/** The variants that apply to a step in these modes, in the order they are laid over it (with the field path of each). */
export function variantsOf(step: WorkshopStep, modes: LabModes): { variant: StepVariant; at: PropertyKey[] }[] {
  const out: { variant: StepVariant; at: PropertyKey[] }[] = [];
  const net = step.podNetwork?.[modes.podNetwork];
  if (net) out.push({ variant: net, at: ['podNetwork', modes.podNetwork] });
  if (modes.proxy === 'nftables' && step.nftables) out.push({ variant: step.nftables, at: ['nftables'] });
  return out;
}

export const stepApplies = (step: WorkshopStep, modes: LabModes): boolean =>
  (!step.proxyModes || step.proxyModes.includes(modes.proxy)) && (!step.podNetworks || step.podNetworks.includes(modes.podNetwork));

/** A step as asked in these modes: its variants laid over it, the variant fields dropped. */
export function stepInModes(step: WorkshopStep, modes: LabModes): WorkshopStep {
  const { nftables: _n, podNetwork: _p, ...base } = step;
  let out: WorkshopStep = base;
  for (const { variant } of variantsOf(step, modes)) {
    // A new check is a new question: the old one's kind, port, hints and feedback do not carry over.
    const question = variant.check ? { kind: undefined, port: 'optional' as const, hints: [], feedback: [] } : {};
    const given = Object.fromEntries(Object.entries(variant).filter(([, v]) => v !== undefined));
    out = { ...out, ...question, ...given };
  }
  return out;
}

/** The workshop as a lab in these modes asks it. */
export function workshopInModes(w: Workshop, modes: LabModes): Workshop {
  return { ...w, steps: w.steps.filter((s) => stepApplies(s, modes)).map((s) => stepInModes(s, modes)) };
}

/** Where a step's check comes from in these modes: the path of the last variant that gives one, else the step's own. */
export function checkPathOf(step: WorkshopStep, modes: LabModes): PropertyKey[] {
  const withCheck = variantsOf(step, modes).filter((v) => v.variant.check);
  return [...(withCheck.at(-1)?.at ?? []), 'check'];
}
