import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { fromSystemError, LabError } from '../../lab/errors.js';
import { loadTopology } from '../../lab/topology/load.js';
import { checkTarget } from '../../lab/util/target.js';
import { problemsOf } from './helpers.js';

/** Issue 16 item 10: input that passed validation and failed (or built a lab that could not work) later. */

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const BASE = readFileSync(join(FIXTURES, 'good', 'base.yaml'), 'utf8');
const tmp = mkdtempSync(join(tmpdir(), 'lab-bounds-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The base topology with one text swapped, written to a file, and the problems loading it reports. */
function problemsWith(from: string, to: string) {
  expect(BASE).toContain(from);
  const file = join(tmp, `t${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, BASE.replaceAll(from, to));
  return problemsOf(() => loadTopology(file));
}

describe('special-purpose address ranges are refused at validation', () => {
  const cases: [string, string, string, string][] = [
    ['a client network in 0.0.0.0/24', '10.241.0.', '0.0.0.', '0.0.0.0/8'],
    ['a client network in 224.0.0.0/24', '10.241.0.', '224.0.0.', '224.0.0.0/4'],
    ['a client network on loopback', '10.241.0.', '127.0.0.', '127.0.0.0/8'],
    ['a client network in link-local', '10.241.0.', '169.254.0.', '169.254.0.0/16'],
    ['a client network in 240/4', '10.241.0.', '240.0.0.', '240.0.0.0/4'],
  ];
  it.each(cases)('%s', (_name, from, to, range) => {
    const problems = problemsWith(from, to);
    const subnet = problems.find((p) => p.field === 'networks[1].subnet');
    expect(subnet?.message).toContain(`overlaps ${range}`);
    expect(subnet?.line).toBeGreaterThan(0);
  });
  it('a pod range or service range on loopback', () => {
    expect(problemsWith('podCIDR: 10.244.0.0/16', 'podCIDR: 127.0.0.0/16').map((p) => p.field)).toContain('cluster.podCIDR');
    expect(problemsWith('serviceCIDR: 172.31.0.0/16', 'serviceCIDR: 224.31.0.0/16').map((p) => p.field)).toContain('cluster.serviceCIDR');
  });
  it('ordinary private ranges still pass', () => {
    expect(problemsWith('10.241.0.', '192.168.7.')).toEqual([]);
  });
});

describe('system errors become one line and exit 3', () => {
  const sysErr = (code: string, syscall: string, path?: string) => Object.assign(new Error(`${code}: boom, ${syscall}`), { code, syscall, path });
  it.each([
    ['EACCES', 'open', '/run/kube-packet-lab/nodeport.lock', /permission denied \(open \/run\/kube-packet-lab\/nodeport\.lock\): .*sudo/],
    ['EROFS', 'open', '/ro/report.json', /read-only file system \(open \/ro\/report\.json\)/],
    ['ENOSPC', 'write', undefined, /no space left on the device \(write\)/],
    ['ENOENT', 'uv_cwd', undefined, /current folder no longer exists/],
  ])('%s in %s', (code, syscall, path, says) => {
    const err = fromSystemError(sysErr(code, syscall, path));
    expect(err?.exitCode).toBe(3);
    expect(err?.message).toMatch(says);
    expect(err?.message).not.toContain('\n');
  });
  it('leaves other errors alone', () => {
    expect(fromSystemError(new Error('x'))).toBeUndefined();
    expect(fromSystemError(sysErr('ENOENT', 'open', '/x'))).toBeUndefined();
  });
});

describe('--to of probe and trace', () => {
  it.each(['x y', '10.240.0.4:99999', '10.240.0.4', '10.240.0.4:0', '10.240.0.300:80', ':80', 'a:b:80', '-x:80', '[fd00::4]:0', '[fd00::g]:80', '[10.240.0.4]:80', 'fd00::4:80'])('refuses %j', (to) => {
    expect(() => checkTarget('--to', to)).toThrow(LabError);
    try {
      checkTarget('--to', to);
    } catch (err) {
      expect((err as LabError).exitCode).toBe(2);
    }
  });
  it.each(['10.240.0.4:32000', 'web.default.svc.cluster.local:80', 'web:443', '[fd00:10:240::4]:32000'])('takes %j', (to) => expect(checkTarget('--to', to)).toBe(to));
  it('names the RFC 5952 form of an IPv6 address written otherwise', () => {
    expect(() => checkTarget('--to', '[FD00:10:240:0:0:0:0:4]:32000')).toThrow('write the IPv6 address as the kernel prints it: [fd00:10:240::4]:32000');
  });
});
