import { dirname, isAbsolute, resolve } from 'node:path';
import type { InputProblem, ProblemLocator } from '../errors.js';
import { loadBalancerOf } from '../plan/load-balancer/index.js';
import { podNetworkOf } from '../plan/pod-network/index.js';
import { insideRoot } from '../util/paths.js';
import { checkAddresses } from './checks/addresses.js';
import { CheckContext } from './checks/context.js';
import { checkFamilies } from './checks/families.js';
import { checkNames } from './checks/names.js';
import { checkRoutes } from './checks/routes.js';
import { checkEndpointSlices } from './checks/endpoint-slices.js';
import { checkKubeProxy } from './checks/kube-proxy.js';
import { checkServices } from './checks/services.js';
import { checkZones } from './checks/zones.js';
import type { Topology } from './schema.js';

export { NODE_PORT_RANGE } from './checks/services.js';

/**
 * Checks that need the whole file, by concern: names, addresses, routes, services, the pod
 * network mode's own, and the files it refers to. Returns every problem at once so a user fixes the file in one go.
 */
export function checkTopology(t: Topology, file: ProblemLocator): InputProblem[] {
  const c = new CheckContext(t, file);
  checkNames(c);
  checkAddresses(c);
  checkRoutes(c);
  checkServices(c);
  checkZones(c);
  checkFamilies(c);
  checkKubeProxy(c);
  checkEndpointSlices(c);
  // What the pod network mode demands (host-gw: one L2 network; vxlan: room for the header).
  podNetworkOf(t).check(t, (path, message) => c.at(path, message));
  loadBalancerOf(t).check(t, (path, message) => c.at(path, message));
  checkFileReferences(c);
  return c.problems;
}

/** The walkthrough lives beside the topology: a path that leaves its folder is refused. */
function checkFileReferences(c: CheckContext): void {
  const ref = c.t.walkthrough;
  if (ref === undefined) return;
  const dir = dirname(resolve(c.file.path));
  if (isAbsolute(ref) || !insideRoot(dir, resolve(dir, ref))) {
    c.at(['walkthrough'], `${ref} leaves the topology's folder; name a file beside it, e.g. ${c.t.lab}.walkthrough.yaml`);
  }
}
