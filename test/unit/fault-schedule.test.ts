import { describe, expect, it } from 'vitest';
import { ALL_FAULT_KINDS, describeRound, faultKinds, faultSchedule } from '../e2e/fault-schedule.js';

describe('the fault-injection schedule', () => {
  it('is a function of its seed: the same seed gives the same rounds, another seed others', () => {
    expect(faultSchedule(7, 30)).toEqual(faultSchedule(7, 30));
    for (const other of [8, 9, 1234567]) expect(faultSchedule(other, 30)).not.toEqual(faultSchedule(7, 30));
  });

  it('replays a prefix: the first k rounds of a longer schedule are the schedule of k rounds', () => {
    expect(faultSchedule(42, 40).slice(0, 13)).toEqual(faultSchedule(42, 13));
  });

  it('meets every verb, signal, concurrent verb and edit (and their absence) within 12 rounds, whatever the seed', () => {
    for (let seed = 0; seed < 50; seed++) {
      const seen = new Set(faultSchedule(seed, 12).flatMap(faultKinds));
      expect(ALL_FAULT_KINDS.filter((k) => !seen.has(k)), `seed ${seed}`).toEqual([]);
    }
  });

  it('never lets a round that renames the lab in its topology file run an up from that file', () => {
    for (let seed = 0; seed < 50; seed++) {
      for (const round of faultSchedule(seed, 24).filter((r) => r.edit?.kind === 'topology-other-lab')) {
        expect(round.start).not.toBe('up');
        for (const v of [round.verb, round.concurrent?.verb]) if (v?.verb === 'up') expect(v.from).toBe('builtin');
      }
    }
  });

  it('keeps delays and arguments in range, and says what each round does', () => {
    for (const round of faultSchedule(3, 200)) {
      if (round.signal) expect(round.signal.afterMs).toBeGreaterThanOrEqual(0);
      if (round.signal) expect(round.signal.afterMs).toBeLessThan(2500);
      if (round.concurrent) expect(round.concurrent.afterMs).toBeLessThan(1500);
      if (round.edit?.kind === 'state-truncate') expect(round.edit.at).toBeLessThan(1);
      expect(round.start === 'down').toBe(round.verb.verb === 'up');
      expect(describeRound(round)).toContain(`verb "`);
    }
    expect(faultSchedule(3, 200).map((r) => r.index)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  });
});
