import { ExitCode, LabError } from '../errors.js';
import { nextSourcePort, portsInUse } from '../kernel/ports.js';
import { preflight } from '../kernel/preflight.js';
import { endpointsView } from '../plan/scale.js';
import { namespaceName } from '../topology/names.js';
import { sendRequest } from '../verify/traffic.js';
import { senderAddress } from '../verify/flows.js';
import { loadWalkthrough, type Traffic } from '../verify/walkthrough.js';
import { checkTarget } from '../util/target.js';
import { runningLab } from './running.js';

export interface ProbeResult {
  lab: string;
  from: string;
  to: string;
  requests: number;
  /** Answers per pod, for every pod that answered. */
  answeredBy: Record<string, number>;
  failed: number;
  /** The first few errors of requests that got no answer. */
  errors: string[];
  /** The ready endpoints of every Service right now, for comparison. */
  endpoints: string[];
  /** Pods that answered although they are no endpoint now (should stay empty). */
  notEndpoints: string[];
  ms: number;
}

/**
 * New connections, counted: send `requests` fresh requests (each from its own source port, so
 * each is a NEW connection to the rules) and report which pods answered. Defaults to the
 * traffic of the lab's walkthrough (e.g. client -> 10.240.0.4:32000).
 */
export async function probe(lab: string, opts: { from?: string; to?: string; requests?: number; timeout?: number } = {}): Promise<ProbeResult> {
  const started = performance.now();
  if (opts.to !== undefined) checkTarget('--to', opts.to);
  const running = runningLab(lab);
  preflight(['ip', 'curl']);
  const t = running.topology;
  let from = opts.from;
  let to = opts.to;
  if (!from || !to) {
    if (!running.fileTopology.walkthrough) throw new LabError(`lab "${lab}" has no walkthrough to take the traffic from: give --from and --to`, ExitCode.badInput);
    // Only its traffic is used: check it against the file's pods, which scale may have changed since.
    const { walkthrough } = loadWalkthrough(running.fileTopology, running.path);
    from ??= walkthrough.traffic.from;
    to ??= walkthrough.traffic.to;
  }
  const sender = [...t.clients, ...t.pods].find((h) => h.name === from);
  if (!sender) throw new LabError(`--from ${from}: no client or pod of that name in lab "${lab}"`, ExitCode.badInput);
  const requests = opts.requests ?? 20;
  if (!Number.isInteger(requests) || requests < 1 || requests > 1000) throw new LabError(`--requests ${requests}: expected 1-1000`, ExitCode.badInput);
  const traffic: Traffic = { from: sender.name, to, requests, maxRequests: requests, timeout: opts.timeout ?? 1 };
  // An IPv6 destination is called from the sender's IPv6 address.
  const source = senderAddress(sender, to);
  if (!source) throw new LabError(`--to ${to}: an IPv6 destination, but ${sender.name} has no IPv6 address (address6)`, ExitCode.badInput);
  const answeredBy: Record<string, number> = {};
  const errors: string[] = [];
  let failed = 0;
  const inUse = await portsInUse(namespaceName(lab, sender.name));
  for (let i = 0; i < requests; i++) {
    const flow = await sendRequest(namespaceName(lab, sender.name), traffic, 'probe', i, nextSourcePort(inUse), source);
    if (flow.answer) answeredBy[flow.answer.pod] = (answeredBy[flow.answer.pod] ?? 0) + 1;
    else {
      failed++;
      if (errors.length < 3) errors.push(flow.error ?? 'no answer');
    }
  }
  const endpointPods = new Set(endpointsView(t).flatMap((v) => [...v.endpoints, ...v.terminating].map((e) => e.pod)));
  return {
    lab,
    from: sender.name,
    to,
    requests,
    answeredBy,
    failed,
    errors,
    endpoints: [...endpointPods].sort(),
    notEndpoints: Object.keys(answeredBy).filter((p) => !endpointPods.has(p)),
    ms: Math.round(performance.now() - started),
  };
}
