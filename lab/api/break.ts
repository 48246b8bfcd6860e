import { applicableFault, applicableFaults } from '../break/index.js';
import type { FaultContext, FaultPlan, HealthyWhen, HostCommand } from '../break/catalogue.js';
import { ExitCode, LabError } from '../errors.js';
import { runIn } from '../kernel/exec.js';
import { requireRoot } from '../kernel/preflight.js';
import { withLabLock } from '../state/lock.js';
import { loadWalkthrough } from '../verify/walkthrough.js';
import { hostNamespace, runningLab, type RunningLab } from './running.js';

/**
 * `lab break` and `lab repair`: a fault is planned from the live lab, recorded in the lab's state,
 * and only then put into the kernel, so `lab repair` (or `lab down`) undoes it even when `break`
 * was killed halfway. Every command runs inside one of the lab's namespaces, never the host's.
 */

/** The lab's topology and walkthrough, as the faults' applicability reads them. */
export function faultContext(running: RunningLab): FaultContext {
  let walkthrough: FaultContext['walkthrough'];
  try {
    walkthrough = running.topology.walkthrough ? loadWalkthrough(running.topology, running.path).walkthrough : undefined;
  } catch {
    walkthrough = undefined; // a lab without a usable walkthrough: the faults that need none still apply
  }
  return { topology: running.topology, walkthrough };
}

const runCommand = (running: RunningLab, c: HostCommand) => runIn(hostNamespace(running, c.host), c.argv[0]!, c.argv.slice(1), { input: c.input, allowFailure: c.mayFail });

export interface BreakResult {
  lab: string;
  fault: string;
  summary: string;
}

/** Put fault `name` into lab `lab`. Exit 2 for a fault unknown or not applicable to the lab, 5 when it is in already. */
export function breakLab(lab: string, name: string): Promise<BreakResult> {
  requireRoot();
  return withLabLock(lab, 'break', async () => {
    const running = runningLab(lab);
    const fault = applicableFault(name, faultContext(running), lab);
    if (running.state.faults?.some((f) => f.fault === name)) throw new LabError(`lab ${lab} has fault ${name} in already: run "lab repair ${lab}" first`, ExitCode.labState);
    const plan = await fault.plan(faultContext(running), async (host, argv) => (await runIn(hostNamespace(running, host), argv[0]!, argv.slice(1))).stdout);
    running.store().recordFault(plan);
    for (const step of plan.breakSteps) await runCommand(running, step);
    return { lab, fault: name, summary: plan.summary };
  });
}

/** Undo every fault `lab break` recorded, newest first; each is forgotten once its repair ran. */
export function repairLab(lab: string): Promise<BreakResult[]> {
  requireRoot();
  return withLabLock(lab, 'repair', async () => {
    const running = runningLab(lab);
    const store = running.store();
    const done: BreakResult[] = [];
    for (const plan of [...(running.state.faults ?? [])].reverse()) {
      await runRepair(running, plan);
      store.forgetFault(plan.fault);
      done.push({ lab, fault: plan.fault, summary: plan.summary });
    }
    return done;
  });
}

/**
 * A fault's repair steps, then its healthy signal awaited (at most 10 s): some repairs only set
 * the kernel or a daemon going (`birdc enable` brings the session up and the route back a moment
 * later), and a repair is done when the lab is healthy again, not when the command returned.
 */
async function runRepair(running: RunningLab, plan: FaultPlan): Promise<void> {
  for (const step of plan.repairSteps) await runCommand(running, step);
  const until = performance.now() + 10_000;
  while (!(await healthyNow(running, plan.healthy)) && performance.now() < until) await new Promise((r) => setTimeout(r, 100));
}

/** Is the fault gone from the live kernel (whoever fixed it)? */
export async function faultFixed(lab: string, plan: FaultPlan): Promise<boolean> {
  const running = runningLab(lab);
  return healthyNow(running, plan.healthy);
}

async function healthyNow(running: RunningLab, h: HealthyWhen): Promise<boolean> {
  const r = await runIn(hostNamespace(running, h.host), h.argv[0]!, h.argv.slice(1), { allowFailure: true });
  const found = new RegExp(h.pattern, 'm').test(`${r.stdout}\n${r.stderr}`);
  return h.absent ? !found : found;
}

/** The faults that apply to a running lab (for --list with a lab, and the challenge's choices). */
export function faultsFor(lab: string): ReturnType<typeof applicableFaults> {
  return applicableFaults(faultContext(runningLab(lab)));
}

/** The workshop's challenge: put fault `name` (or a random one of those that apply) into the lab, and what the learner chooses from. */
export async function startChallenge(lab: string, name: string | undefined, random: () => number = Math.random): Promise<{ choices: ReturnType<typeof applicableFaults>; plan: FaultPlan }> {
  const choices = faultsFor(lab);
  if (choices.length === 0) throw new LabError(`no fault applies to lab ${lab}: lab break --list ${lab} says why for each`, ExitCode.badInput);
  const fault = name === undefined || name === 'random' ? choices[Math.floor(random() * choices.length)]!.name : name;
  await breakLab(lab, fault);
  const plan = runningLab(lab).state.faults!.find((f) => f.fault === fault)!;
  return { choices, plan };
}

/** Undo one recorded fault (the challenge's end), leaving others in. */
export function repairFault(lab: string, fault: string): Promise<void> {
  requireRoot();
  return withLabLock(lab, 'repair', async () => {
    const running = runningLab(lab);
    const plan = running.state.faults?.find((f) => f.fault === fault);
    if (!plan) return;
    await runRepair(running, plan);
    running.store().forgetFault(fault);
  });
}
