import { ZONE_LABEL } from '../../plan/topology-hints.js';
import type { CheckContext } from './context.js';

/**
 * Zones and kube-proxy's own health: a zone is a Node's label (the EndpointSlice controller copies
 * it to each endpoint), so a pod labelled with one is a mistake that would change nothing; and only
 * the static load balancer, whose routes the file writes, can follow kube-proxy's /healthz.
 */
export function checkZones(c: CheckContext): void {
  const { t } = c;
  t.pods.forEach((p, i) => {
    if (p.labels[ZONE_LABEL] !== undefined) {
      c.at(['pods', i, 'labels', ZONE_LABEL], `a zone belongs to a node, not a pod: label node "${p.node}" with ${ZONE_LABEL} (its endpoints take the zone of their node)`);
    }
  });
  if (t.loadBalancer.proxyHealthz && t.loadBalancer.mode !== 'static') {
    c.at(['loadBalancer', 'proxyHealthz'], `only the static load balancer health-checks kube-proxy's /healthz; mode ${t.loadBalancer.mode} announces the IPs instead (MetalLB)`);
  }
}
