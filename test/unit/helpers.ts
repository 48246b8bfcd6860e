import { expect } from 'vitest';
import { ExitCode, InputError, type InputProblem } from '../../lab/errors.js';

/**
 * What the lab says about bad input: the problems of the InputError (exit 2) that `load`
 * throws, or [] when it loads. Any other error fails the test, so a crash never passes for
 * a refusal; callers that expect a refusal assert on the problems they expect.
 */
export function problemsOf(load: () => unknown): InputProblem[] {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).exitCode).toBe(ExitCode.badInput);
    return (err as InputError).problems;
  }
  return [];
}

/** A classic little-endian pcap of Ethernet frames, one a millisecond. */
export function pcapOf(frames: Buffer[]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20);
  const records = frames.map((f, i) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(1_800_000_000, 0);
    r.writeUInt32LE(i * 1000, 4);
    r.writeUInt32LE(f.length, 8);
    r.writeUInt32LE(f.length, 12);
    return Buffer.concat([r, f]);
  });
  return Buffer.concat([header, ...records]);
}
