import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';

/**
 * Unpack the tar stream Docker's archive endpoint sends (a run folder copied out of the lab
 * container): regular files and folders, names from the header or a PAX `path` record. Links,
 * devices and any name that would leave `into` are skipped: the archive comes from a container.
 * Returns the paths written, relative to `into`.
 */
export function untar(tar: Buffer, into: string): string[] {
  const written: string[] = [];
  let paxPath: string | undefined;
  for (let at = 0; at + 512 <= tar.length; ) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const size = parseInt(field(header, 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156] ?? 0);
    const body = tar.subarray(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'))?.[1];
      continue;
    }
    const prefix = field(header, 345, 155);
    const name = paxPath ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    paxPath = undefined;
    const rel = normalize(name).replace(/^(\.\/)+/, '');
    if (rel.startsWith('..') || rel.startsWith(sep) || rel === '.' || rel === '') continue;
    const target = join(into, rel);
    if (type === '5') mkdirSync(target, { recursive: true });
    else if (type === '0' || type === '\0') {
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, body);
      written.push(rel);
    }
  }
  return written;
}

const field = (b: Buffer, offset: number, length: number) => {
  const raw = b.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? length : end).toString('utf8');
};
