import type { LoadBalancerFollow } from '../api/health.js';
import { bold, dim, say, yellow } from './output.js';

/** Where the health-checked load balancer routes went: the router's next hops, as its probes left them. */
export function printLoadBalancers(lbs: LoadBalancerFollow[]): void {
  for (const lb of lbs) {
    const where = `${bold('load balancer')} (${lb.router}): ${lb.to} via ${lb.via.join(', ') || dim('nothing')}`;
    if (lb.settled) say(`${where} ${dim(`(its health checks of the healthCheckNodePort settled in ${lb.ms} ms)`)}`);
    else say(`${where} ${yellow(`- not yet ${lb.want.join(', ')} after ${lb.ms} ms: its health checks did not follow (see workloads.log in the lab's state folder)`)}`);
  }
}
