import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTopology } from '../../lab/topology/load.js';
import { problemsOf } from './helpers.js';

/** A topology may route nothing, and hold no address, outside the lab's own prefixes but its Services' load balancer and external IPs. */
describe('lab bounds', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kpl-bounds-'));
  const variant = (name: string, from: string, to: string) => {
    const text = readFileSync('topologies/loadbalancer.yaml', 'utf8');
    expect(text).toContain(from);
    const path = join(dir, `${name}.yaml`);
    writeFileSync(path, text.split(from).join(to));
    return path;
  };
  const problems = (path: string) => problemsOf(() => loadTopology(path));

  it('accepts the shipped load balancer, whose LB IP lies in the nodes subnet', () => {
    expect(problems('topologies/loadbalancer.yaml')).toEqual([]);
  });

  it('accepts an LB IP outside the lab (as upstream\'s tests write 1.2.3.4) and the route to it', () => {
    expect(problems(variant('outside', '10.240.0.100', '203.0.113.10'))).toEqual([]);
  });

  it('refuses a router route outside the lab that leads to no service IP, and a reserved LB IP, naming fields and lines', () => {
    const stray = problems(variant('stray', '{ to: 10.240.0.100,', '{ to: 203.0.113.10,'));
    expect(stray.map((p) => p.field)).toEqual(['routers[0].routes[2].to']);
    expect(stray[0]!.message).toMatch(/outside the lab/);
    const found = problems(variant('reserved', '10.240.0.100', '127.0.0.100'));
    expect(found.map((p) => p.field).sort()).toEqual(['routers[0].routes[2].to', 'services[0].loadBalancerIPs[0]']);
    for (const p of found) expect(p.line).toBeGreaterThan(0);
    expect(found.find((p) => p.field.startsWith('services'))!.message).toMatch(/reserved range 127\.0\.0\.0\/8/);
  });

  it('refuses a router route to the whole internet', () => {
    const found = problems(variant('default', '{ to: 10.244.0.0/24, via: 10.240.0.4 }', '{ to: 0.0.0.0/0, via: 10.240.0.4 }'));
    expect(found.map((p) => p.field)).toContain('routers[0].routes[0].to');
  });
});
