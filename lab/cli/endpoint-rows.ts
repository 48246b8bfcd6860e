import type { EndpointConditions } from '../plan/endpoints.js';
import type { EndpointsView } from '../plan/scale.js';
import { dim, red, yellow } from './output.js';

/** An EndpointSlice entry's conditions, as kubectl get endpointslice -o yaml shows them. */
export const conditionsText = (c: EndpointConditions) => `ready=${c.ready} serving=${c.serving} terminating=${c.terminating}`;

/**
 * `lab endpoints`' lines for one service port: every endpoint its EndpointSlice lists, sorted by
 * address, the not-ready ones marked with what kube-proxy does with them.
 */
export function endpointRows(view: EndpointsView): string[] {
  const rows = [
    ...view.endpoints.map((e) => ({ e, note: '' })),
    ...view.terminating.map((e) => ({ e, note: 'serving-terminating: used only where no ready endpoint is left' })),
    ...view.notServing.map((e) => ({ e, note: 'not serving: no rule sends to it' })),
  ].sort((a, b) => (a.e.address < b.e.address ? -1 : 1));
  if (rows.length === 0) return [dim('  no endpoints (no pod matches the selector, or no EndpointSlice lists one)')];
  return rows.map(({ e, note }) => {
    const hints = e.hints ? ` hints: ${[...e.hints.forZones.map((z) => `forZones=${z}`), ...e.hints.forNodes.map((n) => `forNodes=${n}`)].join(' ')}` : '';
    // A hand-written slice's endpoint may name no node: local to none.
    const text = `  ${e.address.padEnd(20)} ${e.pod.padEnd(12)} ${(e.node || '(no node)').padEnd(8)} ${conditionsText(e.conditions)}${e.zone ? ` zone=${e.zone}` : ''}${hints}${e.slice !== undefined ? ` slice=${e.slice}` : ''}`;
    if (e.conditions.ready) return text;
    return (e.conditions.serving ? yellow : red)(`${text}  (${note})`);
  });
}
