import { ExitCode, LabError } from '../errors.js';
import type { Plan } from '../plan/plan.js';
import type { LabStore } from '../state/store.js';

/**
 * The pod network's processes (plan.podNetwork.daemons: BIRD in bgp mode), started by provision
 * once the links carry packets. Each must be recorded in the state before it runs, so that down,
 * rollback and the crash sweep stop it by PID. No mode built so far has any; bgp brings them.
 */
export async function startPodNetworkDaemons(plan: Plan, _store: LabStore): Promise<void> {
  const names = plan.podNetwork.daemons.map((d) => `${d.name} in ${d.ns}`);
  throw new LabError(`${plan.podNetwork.mode}: starting ${names.join(', ')} is not built yet`, ExitCode.commandFailed);
}
