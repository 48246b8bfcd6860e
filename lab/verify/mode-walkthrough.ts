import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { LoadBalancerMode, Topology } from '../topology/schema.js';

/**
 * A topology's own walkthrough proves what its file writes: in `loadBalancer.mode` static, the
 * routes (and health checks) of the file. In an announcing mode the wire differs (no health
 * check steers anything; l2 sends every connection to one node), so the walkthrough beside it
 * named `<name>-<mode>.walkthrough.yaml` is the one proved, when it exists:
 * loadbalancer-local.walkthrough.yaml → loadbalancer-local-bgp.walkthrough.yaml.
 */
export function modeWalkthroughName(walkthrough: string, mode: LoadBalancerMode): string {
  if (mode === 'static') return walkthrough;
  return walkthrough.replace(/(\.walkthrough)?\.ya?ml$/, (ext) => `-${mode}${ext}`);
}

/** The topology with its walkthrough swapped for its load balancer mode's own, where the folder has one. */
export function walkthroughInMode(t: Topology, topologyPath: string, exists: (path: string) => boolean = existsSync): Topology {
  if (!t.walkthrough) return t;
  const name = modeWalkthroughName(t.walkthrough, t.loadBalancer.mode);
  return name !== t.walkthrough && exists(resolve(dirname(topologyPath), name)) ? { ...t, walkthrough: name } : t;
}
