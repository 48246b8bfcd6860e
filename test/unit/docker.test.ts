import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { dockerNextHint } from '../../lab/cli/docker.js';
import type Docker from 'dockerode';
import { findLabContainer, hostConfig, labContainerNames, startLabContainer } from '../../lab/docker/container.js';
import { asLabError, containerNameFor, engineError, messageOf, nameFlag } from '../../lab/docker/engine.js';
import { pickNamespace, scenarioInContainer } from '../../lab/docker/runner.js';
import { ExitCode, LabError } from '../../lab/errors.js';
import * as preflight from '../../lab/kernel/preflight.js';
import { PROJECT_ROOT } from '../../lab/util/project.js';

const errno = (code: string) => Object.assign(new Error(`connect ${code} /var/run/docker.sock`), { code });

describe('docker engine errors: one line, exit code 3', () => {
  it('says what to do for each way the socket fails', () => {
    const sock = '/var/run/docker.sock';
    expect(engineError(errno('ECONNREFUSED'), sock).message).toMatch(/^Docker is not running: nothing answers on \/var\/run\/docker.sock/);
    expect(engineError(errno('EACCES'), sock).message).toMatch(/^permission denied on \/var\/run\/docker.sock: run with sudo, or add your user to the docker group$/);
    expect(engineError(errno('ETIMEDOUT'), sock).message).toMatch(/did not answer/);
    for (const code of ['ECONNREFUSED', 'EACCES', 'ENOENT', 'ETIMEDOUT', 'EHOSTUNREACH']) {
      const e = engineError(errno(code), sock);
      expect(e.exitCode).toBe(ExitCode.environment);
      expect(e.message).not.toContain('\n');
    }
  });

  it('tells "not installed" from "not running" by whether docker is on the machine', () => {
    const which = vi.spyOn(preflight, 'which');
    which.mockReturnValue(undefined);
    expect(engineError(errno('ENOENT'), '/var/run/docker.sock').message).toMatch(/^Docker is not installed/);
    which.mockReturnValue('/usr/sbin/dockerd');
    expect(engineError(errno('ENOENT'), '/var/run/docker.sock').message).toMatch(/^Docker is not running/);
    which.mockRestore();
  });

  it("keeps the engine's own message and passes LabErrors through", () => {
    const apiError = Object.assign(new Error('(HTTP code 500) server error - invalid thing'), { statusCode: 500, json: { message: 'invalid thing' } });
    expect(messageOf(apiError)).toBe('invalid thing');
    expect(asLabError(apiError).message).toBe('docker: invalid thing');
    const ours = new LabError('mine', ExitCode.labState);
    expect(asLabError(ours)).toBe(ours);
  });
});

describe('lab container settings', () => {
  it('is least privilege by default: two capabilities, no network, writable /proc/sys', () => {
    const hc = hostConfig(false);
    expect(hc.Privileged).toBeUndefined();
    expect(hc.CapAdd).toEqual(['NET_ADMIN', 'SYS_ADMIN']);
    expect(hc.SecurityOpt).toEqual(['seccomp=unconfined', 'apparmor=unconfined']);
    expect(hc.MaskedPaths).toEqual([]);
    expect(hc.ReadonlyPaths).toEqual([]);
    expect(hc.NetworkMode).toBe('none');
  });

  it('is privileged only when asked', () => {
    const hc = hostConfig(true);
    expect(hc.Privileged).toBe(true);
    expect(hc.CapAdd).toBeUndefined();
    expect(hc.NetworkMode).toBe('none');
  });
});

describe('lab docker shell <node>', () => {
  const ns = ['nodeport-client', 'nodeport-node1', 'nodeport-node2', 'np2-node1'];
  it('takes a full namespace name, or a host name that one lab has', () => {
    expect(pickNamespace(ns, 'nodeport-node2')).toBe('nodeport-node2');
    expect(pickNamespace(ns, 'client')).toBe('nodeport-client');
    expect(pickNamespace(ns, 'node1', 'np2')).toBe('np2-node1');
  });
  it('asks for --lab when the name is in two labs, and lists what exists when it is in none', () => {
    expect(() => pickNamespace(ns, 'node1')).toThrow(/several labs .*--lab/);
    expect(() => pickNamespace(ns, 'web-9')).toThrow(/it has: nodeport-client/);
    expect(() => pickNamespace(ns, 'client', 'np2')).toThrow(/no namespace np2-client/);
  });
});

describe('scenarios inside the container', () => {
  it('passes names and container paths on, and maps project files into the image', () => {
    expect(scenarioInContainer('nodeport')).toBe('nodeport');
    expect(scenarioInContainer(join(PROJECT_ROOT, 'topologies', 'nodeport.yaml'))).toBe('/opt/kube-packet-lab/topologies/nodeport.yaml');
    expect(scenarioInContainer('/opt/kube-packet-lab/topologies/nodeport.yaml')).toBe('/opt/kube-packet-lab/topologies/nodeport.yaml');
  });
  it('refuses a topology file outside the project: the image does not have it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kpl-docker-'));
    const file = join(dir, 'mine.yaml');
    writeFileSync(file, 'lab: mine\n');
    try {
      expect(() => scenarioInContainer(file)).toThrow(/outside the project/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the next: line after lab docker up', () => {
  it('names the lab and one of its own nodes, as verify and shell take them', () => {
    expect(dockerNextHint('nodeport', [])).toBe('next: lab docker verify nodeport; lab docker shell node1 --lab nodeport; lab docker down');
    expect(dockerNextHint('nodeport', ['--name', 'np2'])).toBe('next: lab docker verify np2; lab docker shell node1 --lab np2; lab docker down');
    expect(dockerNextHint('topologies/clusterip.yaml', ['--name=c2'])).toContain('lab docker verify c2;');
  });

  it('names the lab of a topology file whose nodes are not node1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lab-docker-hint-'));
    try {
      const file = join(dir, 'mine.yaml');
      const text = readFileSync(join(PROJECT_ROOT, 'topologies', 'nodeport.yaml'), 'utf8').replace(/^lab: nodeport$/m, 'lab: mine').replaceAll('node1', 'alpha').replaceAll('node2', 'bravo');
      writeFileSync(file, text.replace(/^walkthrough: .*$/m, ''));
      expect(dockerNextHint(file, [])).toBe('next: lab docker verify mine; lab docker shell alpha --lab mine; lab docker down');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('several Docker labs per engine: lab docker … --name N', () => {
  it('derives the container name from N; without a name it is the default one', () => {
    expect(containerNameFor()).toBe('kube-packet-lab');
    expect(containerNameFor('ws-3')).toBe('kube-packet-lab-ws-3');
    expect(containerNameFor('a')).not.toBe(containerNameFor('b'));
    for (const bad of ['', 'Ws', '-x', 'a b', 'a/b', 'x'.repeat(41)]) {
      expect(() => containerNameFor(bad), bad).toThrow(LabError);
      try {
        containerNameFor(bad);
      } catch (e) {
        expect((e as LabError).exitCode).toBe(ExitCode.badInput);
      }
    }
    expect(nameFlag()).toBe('');
    expect(nameFlag('ws-3')).toBe(' --name ws-3');
  });

  /** An engine holding the default lab container, two named ones, and a stranger's container. */
  const engine = () => {
    const listed = ['kube-packet-lab', 'kube-packet-lab-a', 'kube-packet-lab-b'].map((n, i) => ({
      Id: `id${i}`,
      Names: [`/${n}`],
      Image: 'img',
      ImageID: 'sha',
      State: 'running',
      Status: 'Up',
      Created: 0,
      Labels: { 'kube-packet-lab': '1' },
    }));
    const created: string[] = [];
    const docker = {
      listContainers: async () => listed,
      createContainer: async (o: { name: string }) => {
        created.push(o.name);
        listed.push({ ...listed[0]!, Id: `new-${o.name}`, Names: [`/${o.name}`] });
        return { id: `new-${o.name}`, start: async () => undefined };
      },
    };
    return { docker: docker as unknown as Docker, created };
  };

  it('finds each lab by its own container, never another one', async () => {
    const { docker } = engine();
    expect((await findLabContainer(docker))?.id).toBe('id0');
    expect((await findLabContainer(docker, 'a'))?.id).toBe('id1');
    expect((await findLabContainer(docker, 'b'))?.name).toBe('kube-packet-lab-b');
    expect(await findLabContainer(docker, 'c')).toBeUndefined();
    expect(await labContainerNames(docker)).toEqual(['kube-packet-lab', 'kube-packet-lab-a', 'kube-packet-lab-b']);
  });

  it('starts a named lab in a container of that name', async () => {
    const { docker, created } = engine();
    const c = await startLabContainer(docker, { image: 'img', name: 'c' });
    expect(created).toEqual(['kube-packet-lab-c']);
    expect(c.name).toBe('kube-packet-lab-c');
  });

  it("names the Docker lab in the next: line, so each command reaches that container", () => {
    expect(dockerNextHint('nodeport', [], 'ws-3')).toBe('next: lab docker verify nodeport --name ws-3; lab docker shell node1 --lab nodeport --name ws-3; lab docker down --name ws-3');
  });
});
