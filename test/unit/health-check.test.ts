import { describe, expect, it } from 'vitest';
import { healthCheckedRoutes, healthStates } from '../../lab/plan/kube-proxy/health.js';
import { kubeProxyRules } from '../../lab/plan/kube-proxy/iptables.js';
import { planLab } from '../../lab/plan/plan.js';
import { loadTopology } from '../../lab/topology/load.js';
import { loadWalkthrough } from '../../lab/verify/walkthrough.js';

/** The health check node port of a Local LoadBalancer: counts per node, the processes, the filter rule. */

describe('loadbalancer-local', () => {
  const { topology: t, path } = loadTopology('loadbalancer-local');

  it('loads with both walkthroughs', () => {
    expect(loadWalkthrough(t, path).walkthrough.paths.map((p) => p.name)).toEqual(['via-node1', 'via-node2']);
    expect(loadWalkthrough({ ...t, walkthrough: 'loadbalancer-local-unready.walkthrough.yaml' }, path).walkthrough.traffic.requests).toBe(12);
  });

  it("counts each node's ready local endpoints, as kube-proxy's health check server reports them", () => {
    expect(healthStates(t)).toEqual({
      node1: { '32100': { namespace: 'default', name: 'web', localEndpoints: 1 } },
      node2: { '32100': { namespace: 'default', name: 'web', localEndpoints: 1 } },
    });
    const unready = loadTopology('loadbalancer-local', { 'pods.web-2.ready': 'false' }).topology;
    expect(healthStates(unready).node2!['32100']!.localEndpoints).toBe(0);
  });

  it('plans a health check server per node and a checker for the ECMP route to the LB IP', () => {
    expect(healthCheckedRoutes(t)).toEqual([{ router: 'router', to: '10.240.0.100', port: 32100, via: ['10.240.0.4', '10.240.0.5'] }]);
    const plan = planLab(t);
    const health = plan.workloads.filter((w) => w.kind !== 'http');
    expect(health.map((w) => [w.pod, w.ns, w.kind, w.ports])).toEqual([
      ['health-node1', 'loadbalancer-local-node1', 'health-check', [32100]],
      ['health-node2', 'loadbalancer-local-node2', 'health-check', [32100]],
      ['lb-health-router', 'loadbalancer-local-router', 'lb-health', [32100]],
    ]);
    expect(health[2]!.extraArgs).toEqual(['--route', '10.240.0.100', '--port', '32100', '--nodes', '10.240.0.4,10.240.0.5']);
    expect(plan.health.map((h) => h.path.split('/').slice(-2).join('/'))).toEqual(['health/node1.json', 'health/node2.json']);
  });

  it('accepts the health check node port in the filter table (iptables mode)', () => {
    const accept = kubeProxyRules(t, 'node1').filter.rules.filter((r) => r.chain === 'KUBE-NODEPORTS');
    expect(accept.map((r) => r.args.join(' '))).toEqual(['-m comment --comment "default/web:https health check node port" -m tcp -p tcp --dport 32100 -j ACCEPT'.replace(/"/g, '')]);
  });

  it('plans no health processes for a scenario without a health check node port', () => {
    expect(planLab(loadTopology('loadbalancer').topology).workloads.every((w) => w.kind === 'http')).toBe(true);
  });
});
