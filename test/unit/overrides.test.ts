import { describe, expect, it } from 'vitest';
import { loadTopology } from '../../lab/topology/load.js';
import { overrideValue } from '../../lab/topology/overrides.js';
import { problemsOf } from './helpers.js';

describe('--set', () => {
  it('reads a YAML flow list or map as a list or map', () => {
    expect(overrideValue('[10.240.0.100]')).toEqual(['10.240.0.100']);
    expect(overrideValue('[10.240.0.100, 10.240.0.101]')).toEqual(['10.240.0.100', '10.240.0.101']);
    expect(overrideValue('{app: web}')).toEqual({ app: 'web' });
    expect(overrideValue('Local')).toBe('Local');
    expect(overrideValue('32')).toBe(32);
  });

  it('sets a list of load balancer IPs', () => {
    const { topology } = loadTopology('loadbalancer', { 'services.web.loadBalancerIPs': '[10.240.0.100]' });
    expect(topology.services.find((s) => s.name === 'web')!.loadBalancerIPs).toEqual(['10.240.0.100']);
  });

  it('reports a bad flow value at the --set argument', () => {
    const [p, ...rest] = problemsOf(() => loadTopology('loadbalancer', { 'services.web.loadBalancerIPs': '[10.240.0.100' }));
    expect(rest).toEqual([]);
    expect(p).toMatchObject({ file: '--set services.web.loadBalancerIPs=[10.240.0.100' });
    expect(p!.line).toBeUndefined();
    expect(p!.message).toMatch(/^not a YAML flow list or map: /);
  });

  it('reports an unknown key at the --set argument, not at a line of the file', () => {
    const problems = problemsOf(() => loadTopology('nodeport', { 'services.web.externalTraficPolicy': 'Local' }));
    expect(problems).toEqual([{ file: '--set services.web.externalTraficPolicy=Local', field: 'services[0].externalTraficPolicy', message: 'unknown key' }]);
  });

  it('reports a bad item of a set list at the --set argument', () => {
    const problems = problemsOf(() => loadTopology('loadbalancer', { 'services.web.loadBalancerIPs': '[10.240.0.100, nope]' }));
    expect(problems).toEqual([{ file: '--set services.web.loadBalancerIPs=[10.240.0.100, nope]', field: 'services[0].loadBalancerIPs[1]', message: expect.stringMatching(/IPv4/) }]);
  });

  it('still locates problems of the file itself at their line', () => {
    const problems = problemsOf(() => loadTopology('nodeport', { 'services.web.type': 'ClusterIP' }));
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems.filter((q) => !q.field.startsWith('services[0].type'))) expect(p.file).not.toMatch(/^--set/);
  });
});
