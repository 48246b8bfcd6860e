import type { CheckContext } from './context.js';

/**
 * EndpointSlices written by hand: each names a Service without a selector (one with a selector
 * gets its slices from its pods), serves ports the Service has, and lists endpoints the lab can
 * answer from (a pod's address, the node it says matching where that pod runs). The same ip:port
 * may be listed in two slices, as the API allows, if both say the same node.
 */
export function checkEndpointSlices(c: CheckContext): void {
  const { t } = c;
  const names = new Set<string>();
  const nodeOf = new Map<string, { nodeName: string | undefined; where: string }>();
  (t.endpointSlices ?? []).forEach((slice, i) => {
    const at = (...path: PropertyKey[]) => ['endpointSlices', i, ...path];
    const key = `${slice.namespace}/${slice.name}`;
    if (names.has(key)) c.at(at('name'), `endpoint slice ${key} is defined twice`);
    names.add(key);
    const service = t.services.find((s) => s.name === slice.service && s.namespace === slice.namespace);
    if (!service) {
      c.at(at('service'), `no service ${slice.namespace}/${slice.service} to belong to`);
      return;
    }
    if (service.selector !== undefined) c.at(at('service'), `service ${slice.namespace}/${slice.service} has a selector, so its endpoints come from the pods it selects; leave out its selector to list them here`);
    slice.ports.forEach((p, j) => {
      if (!service.ports.some((sp) => sp.name === p.name && sp.protocol === p.protocol)) {
        c.at(at('ports', j, 'name'), `service ${slice.namespace}/${slice.service} has no ${p.protocol} port named "${p.name}" (kube-proxy would ignore this one)`);
      }
    });
    slice.endpoints.forEach((e, j) => {
      const pod = t.pods.find((p) => p.address === e.address);
      if (!pod) c.at(at('endpoints', j, 'address'), `${e.address} is no pod's address; an endpoint must be a pod the lab runs, whose workload answers on the slice's ports`);
      if (e.nodeName !== undefined) {
        if (!t.nodes.some((n) => n.name === e.nodeName)) c.at(at('endpoints', j, 'nodeName'), `no node named ${e.nodeName}`);
        else if (pod && pod.node !== e.nodeName) c.at(at('endpoints', j, 'nodeName'), `the pod at ${e.address} (${pod.name}) runs on ${pod.node}, not ${e.nodeName}`);
      }
      for (const p of slice.ports) {
        const id = `${e.address}:${p.port}/${p.protocol}`;
        const prior = nodeOf.get(id);
        if (prior && prior.nodeName !== e.nodeName) c.at(at('endpoints', j, 'nodeName'), `${id} is also listed at ${prior.where} with nodeName ${prior.nodeName ?? '(none)'}; the same endpoint must say the same node`);
        else if (!prior) nodeOf.set(id, { nodeName: e.nodeName, where: `endpointSlices[${i}].endpoints[${j}]` });
      }
    });
  });
}
