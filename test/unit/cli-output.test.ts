import { describe, expect, it } from 'vitest';
import { conntrackStates, killExplanation } from '../../lab/api/kill-explanation.js';
import { upCommand } from '../../lab/api/running.js';
import { endpointRows } from '../../lab/cli/endpoint-rows.js';
import { outputColumns } from '../../lab/cli/output.js';
import { applyPodChanges, emptyChanges, endpointsView, recordReadiness } from '../../lab/plan/scale.js';
import { loadTopology } from '../../lab/topology/load.js';

const nodeport = loadTopology('nodeport').topology;

describe('lab endpoints', () => {
  it('lists a killed (not serving) endpoint, marked, beside the ready one', () => {
    const killed = applyPodChanges(nodeport, recordReadiness(emptyChanges(), 'web-2', false));
    const view = endpointsView(killed)[0]!;
    expect(view.notServing).toEqual([{ pod: 'web-2', node: 'node2', address: '10.244.1.2:8443', conditions: { ready: false, serving: false, terminating: false } }]);
    const rows = endpointRows(view);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^ {2}10\.244\.0\.3:8443 +web-1 +node1 +ready=true serving=true terminating=false$/);
    expect(rows[1]).toMatch(/10\.244\.1\.2:8443 +web-2 +node2 +ready=false serving=false terminating=false {2}\(not serving: no rule sends to it\)$/);
  });

  it('marks a serving-terminating endpoint with when it is used', () => {
    const terminating = applyPodChanges(nodeport, recordReadiness(emptyChanges(), 'web-2', true, true));
    const rows = endpointRows(endpointsView(terminating)[0]!);
    expect(rows[1]).toMatch(/web-2 .*terminating=true {2}\(serving-terminating: used only where no ready endpoint is left\)$/);
  });
});

describe('lab kill explains conntrack by state', () => {
  const pod = nodeport.pods.find((p) => p.name === 'web-2')!;
  const explain = (states: string[]) => killExplanation(pod, [8443], states, [], false)[1]!;

  it('with no entry, says so and never speaks of "the 0 entries above"', () => {
    const text = explain([]);
    expect(text).toContain('conntrack holds no entry translated to web-2');
    expect(text).not.toMatch(/\b0 entries|entries above/);
  });

  it('calls TIME_WAIT entries closed connections, not existing ones, and counts open ones apart', () => {
    const text = explain(['TIME_WAIT', 'TIME_WAIT', 'ESTABLISHED']);
    expect(text).toContain('Of the 3 conntrack entries translated to web-2');
    expect(text).toContain('the 1 open one (1 ESTABLISHED) keep their DNAT to 10.244.1.2:8443');
    expect(text).toContain('the 2 TIME_WAIT/CLOSE entries are connections already closed');
    expect(explain(['TIME_WAIT'])).not.toMatch(/open one/);
    expect(conntrackStates(['TIME_WAIT', 'ESTABLISHED', 'TIME_WAIT', ''])).toBe('2 TIME_WAIT, 1 ESTABLISHED, 1 UDP');
  });
});

describe('how wide human output may be', () => {
  it('honours COLUMNS, then the terminal, and is 80 columns on a pipe', () => {
    expect(outputColumns({ COLUMNS: '120' }, { isTTY: false })).toBe(120);
    expect(outputColumns({ COLUMNS: '60' }, { isTTY: true, columns: 200 })).toBe(60);
    expect(outputColumns({}, { isTTY: true, columns: 200 })).toBe(200);
    expect(outputColumns({}, { isTTY: false, columns: undefined })).toBe(80);
    expect(outputColumns({ COLUMNS: 'wide' }, { isTTY: true, columns: 0 })).toBe(80);
  });
});

describe('the hint of a lab that is not up', () => {
  it('says lab up <name> only when a scenario has that name', () => {
    expect(upCommand('nodeport')).toBe('lab up nodeport');
    expect(upCommand('nn')).toBe('lab up <scenario> --name nn');
  });
});
