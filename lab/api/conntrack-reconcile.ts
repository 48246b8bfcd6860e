import { deleteEntries } from '../kernel/conntrack.js';
import { readConntrack } from '../kernel/readers.js';
import { filterArgs, staleUdpFilters, udpFrontends } from '../plan/kube-proxy/conntrack-cleanup.js';
import { namespaceName } from '../topology/names.js';
import type { Topology } from '../topology/schema.js';
import type { UdpFlush } from './kill-explanation.js';

/**
 * kube-proxy's conntrack reconciler after a sync, on every node: list the node's UDP entries and
 * delete, filter by filter, those that go to a UDP Service frontend but whose reply comes from no
 * serving endpoint of it. Returns one row per filter that deleted something.
 */
export async function reconcileUdpConntrack(t: Topology): Promise<UdpFlush[]> {
  const frontends = udpFrontends(t);
  if (frontends.byAddress.size === 0 && frontends.byNodePort.size === 0) return [];
  const rows = await Promise.all(
    t.nodes.map(async (n) => {
      const ns = namespaceName(t.lab, n.name);
      const out: UdpFlush[] = [];
      for (const f of staleUdpFilters(frontends, await readConntrack(ns, 'udp'))) {
        const entries = await deleteEntries(ns, filterArgs(f));
        if (entries > 0) out.push({ node: n.name, endpoint: `${f.replySrc}:${f.replySport}`, frontend: `${f.origDst ?? '*'}:${f.origDport}`, entries });
      }
      return out;
    }),
  );
  return rows.flat();
}
