import type { FaultPlan, FaultProbe } from '../break/catalogue.js';
import type { StepResult } from '../verify/judges.js';
import { failureKind } from '../verify/outcome.js';
import { sendRequest } from '../verify/traffic.js';
import type { Flow } from '../verify/flows.js';
import { hostNamespace, type RunningLab } from './running.js';

/**
 * The symptom probes of the faults `lab break` put in: requests a walkthrough does not send (a
 * localhost NodePort), sent by `lab verify` and `lab workshop --check` while a fault is recorded.
 * They test the live kernel, so a fault fixed by hand passes them although the state still
 * records it until `lab repair`.
 */

const PROBE_REQUESTS = 4;
/** Inside the range the workshop's "last request" lookups ignore (the lab's own requests). */
const PROBE_PORT_BASE = 26000;

export interface ProbeOutcome {
  probe: FaultProbe;
  fault: string;
  answered: number;
  sent: number;
  seen: string;
}

function hostAddress(running: RunningLab, host: string): string {
  const t = running.topology;
  return [...t.clients, ...t.pods].find((h) => h.name === host)?.address ?? t.nodes.find((n) => n.name === host)?.address ?? '0.0.0.0';
}

export async function runFaultProbes(running: RunningLab, faults: readonly FaultPlan[] = running.state.faults ?? []): Promise<ProbeOutcome[]> {
  const out: ProbeOutcome[] = [];
  for (const plan of faults) {
    for (const probe of plan.probes ?? []) {
      const traffic = { from: probe.from, to: probe.to, requests: 1, maxRequests: 1, timeout: 1 };
      const base = PROBE_PORT_BASE + Math.floor(Math.random() * 2000);
      const flows: Flow[] = [];
      for (let i = 0; i < PROBE_REQUESTS; i++) flows.push(await sendRequest(hostNamespace(running, probe.from), traffic, 'probe', i, base + i, hostAddress(running, probe.from)));
      const answered = flows.filter((f) => f.answer).length;
      const failures = new Map<string, number>();
      for (const f of flows.filter((x) => !x.answer)) failures.set(failureKind(f.error), (failures.get(failureKind(f.error)) ?? 0) + 1);
      const why = [...failures].map(([k, n]) => `${n} ${k}`).join(', ');
      const seen = `${answered} of ${flows.length} requests answered${why ? `: ${why}` : ''}`;
      out.push({ probe, fault: plan.fault, answered, sent: flows.length, seen });
    }
  }
  return out;
}

/** A probe as a step of verify's report. Pure. */
export const probeStep = (o: ProbeOutcome, i: number): StepResult => ({
  step: `probe ${i + 1}`,
  title: o.probe.what,
  at: o.probe.from,
  expected: `${o.probe.from} > ${o.probe.to} answered (all ${o.sent} requests)`,
  seen: o.seen,
  status: o.answered === o.sent ? 'pass' : 'fail',
});
