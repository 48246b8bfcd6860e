import type { LoadBalancerFollow } from '../api/health.js';
import { PROXY_HEALTH_PORT } from '../plan/kube-proxy/proxy-health.js';
import type { AnnouncementSync } from '../api/announcements.js';
import { bold, dim, green, red, say, yellow } from './output.js';

/** Where the health-checked load balancer routes went: the router's next hops, as its probes left them. */
export function printLoadBalancers(lbs: LoadBalancerFollow[]): void {
  for (const lb of lbs) {
    const where = `${bold('load balancer')} (${lb.router}): ${lb.to} via ${lb.via.join(', ') || dim('nothing')}`;
    const probed = lb.port === PROXY_HEALTH_PORT ? `kube-proxy's /healthz (${lb.port})` : 'the healthCheckNodePort';
    if (lb.settled) say(`${where} ${dim(`(its health checks of ${probed} settled in ${lb.ms} ms)`)}`);
    else say(`${where} ${yellow(`- not yet ${lb.want.join(', ')} after ${lb.ms} ms: its health checks did not follow (see workloads.log in the lab's state folder)`)}`);
  }
}

/** What MetalLB's speakers announced or withdrew, and the router's route for each IP once it followed. */
export function printAnnouncements(sync: AnnouncementSync | undefined): void {
  if (!sync) return;
  for (const a of sync.announcements) say(`${bold('MetalLB')} ${a.ip} (${a.service}, ${a.policy}): announced by ${a.nodes.join(', ') || dim('no node')}`);
  for (const r of sync.restarted ?? []) say(`${bold('MetalLB')} ${r.name} in ${r.host} was not running: started again (pid ${r.pid}), ready in ${r.ms} ms`);
  for (const host of sync.notRunning) say(yellow(`MetalLB's speaker in ${host} is not running: its announcements cannot change (lab status; lab down and up rebuild it)`));
  for (const c of sync.changes) say(`${bold('MetalLB')} ${c.node} ${c.change === 'announced' ? green('announced') : red('withdrew')} ${c.ip}`);
  for (const r of sync.routes) {
    const where = `${bold('router')} ${r.router}: ${r.to} ${r.have.length ? `via ${r.have.join(', ')} (proto bird)` : dim('no route')}`;
    if (r.settled) say(`${where} ${dim(`(followed in ${r.ms} ms)`)}`);
    else say(`${where} ${yellow(`- not yet ${r.via.join(', ') || 'withdrawn'} after ${r.ms} ms (see the BIRD logs in the lab's state folder)`)}`);
  }
  for (const n of sync.neighbours) {
    const where = `${bold('router')} ${n.router}: neighbour ${n.ip} ${n.have ? `lladdr ${n.have}` : dim('no entry yet (nobody asked)')}`;
    const leader = n.node ? `${n.node}'s ${n.mac}` : 'nobody';
    say(n.settled ? `${where} ${dim(`(leader ${leader}, ${n.ms} ms)`)}` : `${where} ${yellow(`- not yet ${leader} after ${n.ms} ms`)}`);
  }
}
