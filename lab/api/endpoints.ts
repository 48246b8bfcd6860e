import { endpointsView, type EndpointsView } from '../plan/scale.js';
import { runningLab } from './running.js';

/**
 * A running lab's endpoints as its EndpointSlices would list them: per service port, every pod the
 * selector picks that is ready, or serving out a grace period (lab kill --terminating), with the
 * conditions ready / serving / terminating. No kernel reads: this is the input kube-proxy syncs from.
 */
export function endpoints(lab: string): { lab: string; mode: string; services: EndpointsView[] } {
  const running = runningLab(lab);
  return { lab, mode: running.topology.kubeProxy.mode, services: endpointsView(running.topology) };
}
