import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lab/util/project.js';

/**
 * Every import points down: the CLI is a thin layer over lab/api, lab/api composes the stages,
 * and no stage reaches up into the layers above it.
 */
const LAB = join(PROJECT_ROOT, 'lab');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Each lab module's imports of other lab modules, as folder names under lab/ ("cli", "api", ...). */
const edges = sources(LAB).flatMap((file) => {
  const from = relative(LAB, file).split('/')[0]!;
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g)].map((m) => {
    const target = relative(LAB, resolve(dirname(file), m[1] ?? m[2]!));
    return { file: relative(PROJECT_ROOT, file), from, to: target.split('/')[0]! };
  });
});

describe('layering', () => {
  it('finds the imports it judges', () => {
    expect(edges.filter((e) => e.to === 'api').length).toBeGreaterThan(10);
  });

  it('nothing below the CLI imports lab/cli', () => {
    expect(edges.filter((e) => e.to === 'cli' && e.from !== 'cli').map((e) => e.file)).toEqual([]);
  });

  it('only the CLI imports lab/api', () => {
    expect(edges.filter((e) => e.to === 'api' && e.from !== 'api' && e.from !== 'cli').map((e) => e.file)).toEqual([]);
  });
});
