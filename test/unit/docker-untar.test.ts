import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { untar } from '../../lab/docker/untar.js';

describe('untar: a run folder copied out of the lab container', () => {
  const dir = mkdtempSync(join(tmpdir(), 'untar-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('unpacks what tar packed (a long PAX name included), and nothing outside the target', () => {
    const src = join(dir, 'src', 'run');
    const long = 'a'.repeat(120);
    mkdirSync(join(src, 'pcaps'), { recursive: true });
    writeFileSync(join(src, 'report.html'), '<html>report</html>');
    writeFileSync(join(src, 'pcaps', `${long}.pcap`), Buffer.from([0xd4, 0xc3, 0xb2, 0xa1, 0, 1]));
    const tar = execFileSync('tar', ['--format=pax', '-c', '-C', join(dir, 'src'), 'run']);
    const out = join(dir, 'out');
    const written = untar(tar, out).sort();
    expect(written).toEqual([`run/pcaps/${long}.pcap`, 'run/report.html']);
    expect(readFileSync(join(out, 'run', 'report.html'), 'utf8')).toBe('<html>report</html>');
    expect([...readFileSync(join(out, 'run', 'pcaps', `${long}.pcap`))]).toEqual([0xd4, 0xc3, 0xb2, 0xa1, 0, 1]);

    const evil = execFileSync('tar', ['-c', '-P', '-C', join(dir, 'src'), '--transform', 's,^run,../escaped,', 'run/report.html']);
    expect(untar(evil, out)).toEqual([]);
  });
});
