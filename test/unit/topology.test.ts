import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type InputProblem } from '../../lab/errors.js';
import { checkTopology } from '../../lab/topology/check.js';
import { applyOverrides, loadTopology } from '../../lab/topology/load.js';
import { displayPath, resolveTopologyPath, TOPOLOGIES_DIR } from '../../lab/topology/paths.js';
import { topologySchema } from '../../lab/topology/schema.js';
import { YamlFile } from '../../lab/util/yaml-file.js';
import { problemsOf } from './helpers.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const bad = (name: string) => join(FIXTURES, 'bad', `${name}.yaml`);

/** The problems loading `ref` (with --set overrides) reports; a topology that loads fails the test. */
function refused(ref: string, overrides: Record<string, string> = {}): InputProblem[] {
  const problems = problemsOf(() => loadTopology(ref, overrides));
  expect(problems, `${ref} should be refused`).not.toEqual([]);
  return problems;
}

/** The problems as [field, line] pairs, sorted, for exact comparison. */
const located = (problems: InputProblem[]) => problems.map((p) => [p.field, p.line] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

describe('topologies/nodeport.yaml', () => {
  const { topology, path } = loadTopology('nodeport');

  it('resolves by scenario name to the project folder', () => {
    expect(path).toBe(join(TOPOLOGIES_DIR, 'nodeport.yaml'));
    expect(resolveTopologyPath('nodeport')).toBe(path);
  });

  it('holds the documented world', () => {
    expect(topology.lab).toBe('nodeport');
    expect(topology.cluster).toEqual({ podCIDR: '10.244.0.0/16', serviceCIDR: '172.31.0.0/16', domain: 'cluster.local' });
    expect(topology.nodes.map((n) => [n.name, n.address, n.podCIDR, n.bridge])).toEqual([
      ['node1', '10.240.0.4', '10.244.0.0/24', 'cbr0'],
      ['node2', '10.240.0.5', '10.244.1.0/24', 'cbr0'],
    ]);
    expect(topology.clients).toEqual([{ name: 'client', network: 'clients', address: '10.241.0.4' }]);
    expect(topology.pods.map((p) => [p.name, p.node, p.address, p.ready])).toEqual([
      ['web-1', 'node1', '10.244.0.3', true],
      ['web-2', 'node2', '10.244.1.2', true],
    ]);
  });

  it('fills schema defaults for the service', () => {
    const [web] = topology.services;
    expect(web).toMatchObject({
      name: 'web',
      namespace: 'default',
      type: 'NodePort',
      clusterIP: '172.31.0.5',
      externalTrafficPolicy: 'Cluster',
      internalTrafficPolicy: 'Cluster',
      sessionAffinity: 'None',
      loadBalancerIPs: [],
    });
    expect(web!.ports).toEqual([{ name: 'https', protocol: 'TCP', port: 443, targetPort: 8443, nodePort: 32000 }]);
    expect(topology.routers[0]!.hashPorts).toBe(false);
  });

  it('the fixture template itself is valid, so each bad fixture fails for its one defect only', () => {
    expect(() => loadTopology(join(FIXTURES, 'good', 'base.yaml'))).not.toThrow();
  });
});

describe('broken topologies', () => {
  // [fixture, expected (field, line) pairs, a word each message must contain (in order)]
  const cases: [string, [string, number][], RegExp[]][] = [
    ['unknown-key', [['nodes[1].address', 24], ['nodes[1].adress', 26]], [/is required/, /unknown key/]],
    ['address-outside-subnet', [['nodes[1].address', 26]], [/10\.240\.1\.5 is not inside network "nodes" \(10\.240\.0\.0\/24\)/]],
    ['duplicate-names', [['clients[0].name', 30], ['pods[1].name', 33]], [/"router" is already used by routers\[0\]\.name/, /"node2" is already used by nodes\[1\]\.name/]],
    ['duplicate-addresses', [['clients[0].address', 30], ['nodes[1].address', 26]], [/10\.241\.0\.1 is already used by routers\[0\]\.interfaces\[1\]\.address/, /10\.240\.0\.4 is already used by nodes\[0\]\.address/]],
    ['nodeport-range', [['services[0].ports[0].nodePort', 43]], [/32768 is outside the NodePort range 30000-32767/]],
    ['long-pod-name', [['pods[1].name', 33]], [/"veth-web-frontend-2".* 19 characters.* 15/]],
    ['long-bridge-name', [['nodes[1].bridge', 28]], [/"pods-bridge-node2".* 17 characters/]],
    ['bridge-name-eth0', [['nodes[1].bridge', 28]], [/"eth0" is already an interface/]],
    ['pod-unknown-node', [['pods[1].node', 33]], [/no node named "node3"/]],
    ['missing-field', [['services[0].clusterIP', 35]], [/^is required$/]],
    ['clusterip-outside', [['services[0].clusterIP', 37]], [/10\.96\.0\.10 is not inside cluster\.serviceCIDR 172\.31\.0\.0\/16/]],
    ['wrong-type', [['services[0].ports[0].port', 41]], [/expected number, received string/]],
    [
      'node-interfaces',
      [['nodes[0].interfaces[0].network', 25], ['nodes[0].interfaces[1].address', 26], ['nodes[0].interfaces[2].network', 27]],
      [/node "node1" is already on network "nodes" \(its eth0\)/, /10\.241\.0\.1 is already used by routers\[0\]\.interfaces\[1\]\.address/, /no network named "backstage"/],
    ],
  ];

  it.each(cases)('%s is rejected with file, field and line', (name, expected, messages) => {
    const problems = refused(bad(name));
    expect(located(problems)).toEqual(expected);
    const sorted = [...problems].sort((a, b) => (a.field < b.field ? -1 : 1));
    sorted.forEach((p, i) => {
      expect(p.file).toBe(displayPath(bad(name)));
      expect(p.file).toMatch(new RegExp(`bad/${name}\\.yaml$`));
      expect(p.message).toMatch(messages[i]!);
    });
  });

  it('a wrong type is not reported as a missing field', () => {
    const [p] = refused(bad('wrong-type'));
    expect(p!.message).not.toMatch(/required/);
  });

  it('a YAML syntax error names the line it is on', () => {
    const problems = refused(bad('yaml-syntax'));
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]!.line).toBe(37);
    for (const p of problems) {
      expect(p.file).toMatch(/bad\/yaml-syntax\.yaml$/);
      expect(p.message).toMatch(/^YAML syntax: /);
      expect(p.line).toBeGreaterThanOrEqual(37);
    }
  });

  it('a key given twice is a YAML error on the second one', () => {
    const problems = refused(bad('duplicate-key'));
    expect(problems).toEqual([{ file: displayPath(bad('duplicate-key')), field: '', line: 27, message: 'YAML syntax: Map keys must be unique' }]);
  });

  it('the InputError message prints file:line: field: message', () => {
    try {
      loadTopology(bad('nodeport-range'));
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toBe(
        `${displayPath(bad('nodeport-range'))}:43: services[0].ports[0].nodePort: 32768 is outside the NodePort range 30000-32767`,
      );
    }
  });

  it('a missing file and an unknown scenario are input errors too', () => {
    expect(refused(join(FIXTURES, 'bad', 'no-such-file.yaml'))[0]!.message).toBe('no such file');
    expect(refused('no-such-scenario')[0]!.message).toMatch(/no scenario named "no-such-scenario"/);
    expect(refused('Bad Name')[0]!.message).toMatch(/not a scenario name/);
  });

  it('reports every problem of a file at once', () => {
    const file = YamlFile.parse(
      [
        'lab: x',
        'cluster: { podCIDR: 10.244.0.0/16, serviceCIDR: 172.31.0.0/16 }',
        'networks: [{ name: n, subnet: 10.240.0.0/24 }]',
        'routers: [{ name: r, interfaces: [{ network: n, address: 10.240.0.1 }] }]',
        'nodes:',
        '  - { name: a, network: n, address: 10.240.0.255, podCIDR: 10.244.0.0/24 }',
        '  - { name: b, network: n, address: 10.240.0.2, podCIDR: 10.244.0.0/25 }',
        'pods:',
        '  - { name: p, node: a, address: 10.244.0.1 }',
        'services:',
        '  - { name: s, type: ClusterIP, clusterIP: 172.31.0.1, selector: {}, ports: [{ port: 80, targetPort: 80, nodePort: 30080 }] }',
      ].join('\n'),
      'inline.yaml',
    );
    const problems = checkTopology(file.validate(topologySchema), file);
    expect(located(problems)).toEqual([
      ['nodes[0].address', 6],
      ['nodes[1].podCIDR', 7],
      ['nodes[1].podCIDR', 7],
      ['pods[0].address', 9],
      ['services[0].ports[0].nodePort', 11],
      ['services[0].selector', 11], // an empty selector selects no pod
    ]);
    expect(problems.find((p) => p.field === 'nodes[0].address')!.message).toMatch(/broadcast/);
    expect(problems.filter((p) => p.field === 'nodes[1].podCIDR').map((p) => p.message)).toEqual([
      '10.244.0.0/25 overlaps the podCIDR of node "a"',
      // both bridges would be 10.244.0.1
      'address 10.244.0.1 is already used by nodes[0].podCIDR',
    ]);
    expect(problems.find((p) => p.field === 'pods[0].address')!.message).toMatch(/bridge cbr0/);
    expect(problems.find((p) => p.field === 'services[0].ports[0].nodePort')!.message).toMatch(/ClusterIP service has no nodePort/);
  });
});

describe('--set overrides', () => {
  it('sets a field of a list item addressed by name', () => {
    const { topology } = loadTopology('nodeport', { 'services.web.externalTrafficPolicy': 'Local' });
    expect(topology.services[0]!.externalTrafficPolicy).toBe('Local');
    expect(topology.services[0]!.internalTrafficPolicy).toBe('Cluster');
  });

  it('sets a top-level field', () => {
    expect(loadTopology('nodeport', { lab: 'np2' }).topology.lab).toBe('np2');
  });

  it('parses numbers and booleans as YAML scalars', () => {
    const { topology } = loadTopology('nodeport', {
      'services.web.ports.https.nodePort': '30000',
      'pods.web-2.ready': 'false',
      'routers.router.hashPorts': 'true',
    });
    expect(topology.services[0]!.ports[0]!.nodePort).toBe(30000);
    expect(topology.pods[1]!.ready).toBe(false);
    expect(topology.routers[0]!.hashPorts).toBe(true);
    expect(loadTopology('nodeport', { 'services.web.ports.https.nodePort': '32767' }).topology.services[0]!.ports[0]!.nodePort).toBe(32767);
  });

  it('leaves the file on disk and other loads untouched', () => {
    loadTopology('nodeport', { lab: 'np3' });
    expect(loadTopology('nodeport').topology.lab).toBe('nodeport');
  });

  it('an override that breaks a rule is checked like the file', () => {
    const problems = refused('nodeport', { 'services.web.ports.https.nodePort': '29999' });
    expect(problems).toHaveLength(1);
    // Reported at the --set that made the value, not at the line of the file's own (valid) value.
    expect(problems[0]).toEqual({ file: '--set services.web.ports.https.nodePort=29999', field: 'services[0].ports[0].nodePort', message: '29999 is outside the NodePort range 30000-32767' });
    expect(refused('nodeport', { 'services.web.externalTrafficPolicy': 'Sometimes' })[0]!.field).toBe('services[0].externalTrafficPolicy');
  });

  it('a path through an unknown list item is an input error naming the --set key', () => {
    const problems = refused('nodeport', { 'services.nope.type': 'ClusterIP' });
    expect(problems).toEqual([{ file: '--set services.nope.type=ClusterIP', field: 'services', message: 'no item named "nope" here' }]);
    const deeper = refused('nodeport', { 'services.web.ports.http.port': '80' });
    expect(deeper).toHaveLength(1);
    // (field is printed "services.0.ports" by load.ts, not "services[0].ports" like every other problem: reported, not asserted)
    expect(deeper[0]).toMatchObject({ file: '--set services.web.ports.http.port=80', message: 'no item named "http" here' });
  });

  it('an override of an unknown key is rejected as an unknown key', () => {
    const problems = refused('nodeport', { 'services.web.externalTrafficPolcy': 'Local' });
    expect(problems.map((p) => [p.field, p.message])).toEqual([['services[0].externalTrafficPolcy', 'unknown key']]);
  });

  it('applyOverrides edits the document in place', () => {
    const file = YamlFile.parse('lab: a\nnodes:\n  - { name: n1, address: 10.0.0.1 }\n', 'inline.yaml');
    applyOverrides(file, { 'nodes.n1.address': '10.0.0.9', lab: 'b' });
    expect(file.doc.toJS()).toEqual({ lab: 'b', nodes: [{ name: 'n1', address: '10.0.0.9' }] });
  });
});
