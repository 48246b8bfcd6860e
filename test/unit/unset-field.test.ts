import { describe, expect, it } from 'vitest';
import { loadTopology } from '../../lab/topology/load.js';
import { checkTopologyFile } from '../../lab/api/check.js';
import { InputError } from '../../lab/errors.js';

describe('--set k= removes a field', () => {
  it('an optional field goes, a defaulted one takes its default', () => {
    const lb = loadTopology('loadbalancer-local').topology;
    expect(lb.services[0]!.healthCheckNodePort).toBe(32100);
    expect(loadTopology('loadbalancer-local', { 'services.web.healthCheckNodePort': '' }).topology.services[0]!.healthCheckNodePort).toBeUndefined();
    expect(loadTopology('nodeport-local', { 'services.web.externalTrafficPolicy': '' }).topology.services[0]!.externalTrafficPolicy).toBe('Cluster');
  });

  it('removing a required field is reported at the --set', () => {
    expect(() => loadTopology('nodeport', { 'services.web.clusterIP': '' })).toThrow(/--set services\.web\.clusterIP=: services\[0\]\.clusterIP: is required/);
  });
});

describe('lab check', () => {
  it('names the walkthrough it checked, or the derived one', () => {
    expect(checkTopologyFile('nodeport').walkthrough).toMatchObject({ paths: 2 });
    expect(checkTopologyFile('test/fixtures/worlds/three-nodes.yaml').walkthrough).toMatchObject({ derived: true, paths: 18 });
  });

  it('refuses a broken file with file:line errors', () => {
    try {
      checkTopologyFile('test/fixtures/bad/duplicate-addresses.yaml');
      expect.fail('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).message).toMatch(/duplicate-addresses\.yaml:\d+: \S+\.address: .*already used by nodes\[0\]\.address/);
    }
  });
});
