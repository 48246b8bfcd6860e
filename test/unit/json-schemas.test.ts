import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { jsonSchemas, SCHEMAS_DIR, schemaText, type SchemaFile } from '../../lab/api/json-schemas.js';
import { TOPOLOGIES_DIR } from '../../lab/topology/paths.js';
import { PROJECT_ROOT } from '../../lab/util/project.js';

const shipped = (file: SchemaFile) => readFileSync(join(PROJECT_ROOT, SCHEMAS_DIR, file), 'utf8');
const kindOf = (yamlFile: string): SchemaFile =>
  yamlFile.endsWith('.walkthrough.yaml') ? 'walkthrough.schema.json' : yamlFile.endsWith('.workshop.yaml') ? 'workshop.schema.json' : 'topology.schema.json';
const yamlFiles = readdirSync(TOPOLOGIES_DIR).filter((f) => f.endsWith('.yaml')).sort();
/** A validator made from the shipped JSON Schema alone, as an editor sees it. */
const validator = (file: SchemaFile) => z.fromJSONSchema(JSON.parse(shipped(file)) as Parameters<typeof z.fromJSONSchema>[0]);

describe('JSON Schemas shipped in schemas/', () => {
  it.each(Object.keys(jsonSchemas()) as SchemaFile[])('%s is what the zod schemas say today (else: npm run schemas)', (file) => {
    expect(shipped(file), `schemas/${file} is stale: run npm run schemas`).toBe(schemaText(jsonSchemas()[file]));
  });

  it('every scenario file names its schema on its first line, for yaml-language-server', () => {
    expect(yamlFiles.length).toBeGreaterThan(10);
    for (const f of yamlFiles) {
      const first = readFileSync(join(TOPOLOGIES_DIR, f), 'utf8').split('\n')[0];
      expect(first, f).toBe(`# yaml-language-server: $schema=../${SCHEMAS_DIR}/${kindOf(f)}`);
    }
  });

  it.each(yamlFiles)('accepts topologies/%s', (f) => {
    const doc: unknown = parse(readFileSync(join(TOPOLOGIES_DIR, f), 'utf8'));
    const result = validator(kindOf(f)).safeParse(doc);
    expect(result.success, JSON.stringify(result.error?.issues)).toBe(true);
  });

  it('rejects what the lab rejects field by field: unknown fields, wrong enums, bad names', () => {
    const topology = parse(readFileSync(join(TOPOLOGIES_DIR, 'nodeport.yaml'), 'utf8')) as Record<string, unknown>;
    const check = validator('topology.schema.json');
    expect(check.safeParse({ ...topology, extra: 1 }).success).toBe(false);
    expect(check.safeParse({ ...topology, lab: 'Bad Name' }).success).toBe(false);
    const services = topology.services as Record<string, unknown>[];
    expect(check.safeParse({ ...topology, services: [{ ...services[0], externalTrafficPolicy: 'Sometimes' }] }).success).toBe(false);

    const walkthrough = parse(readFileSync(join(TOPOLOGIES_DIR, 'nodeport.walkthrough.yaml'), 'utf8')) as Record<string, unknown>;
    const paths = walkthrough.paths as Record<string, unknown>[];
    expect(validator('walkthrough.schema.json').safeParse({ ...walkthrough, paths: [{ ...paths[0], outcome: 'maybe' }] }).success).toBe(false);
    const workshop = parse(readFileSync(join(TOPOLOGIES_DIR, 'nodeport.workshop.yaml'), 'utf8')) as Record<string, unknown>;
    expect(validator('workshop.schema.json').safeParse({ ...workshop, steps: [] }).success).toBe(false);
  });

  it('the complete example in docs/walkthrough-format.md is a valid walkthrough', () => {
    const doc = readFileSync(join(PROJECT_ROOT, 'docs', 'walkthrough-format.md'), 'utf8');
    const examples = [...doc.matchAll(/```yaml\n(# yaml-language-server: \$schema=\.\.\/schemas\/walkthrough\.schema\.json\n[\s\S]*?)```/g)].map((m) => m[1]!).filter((text) => /^title:/m.test(text));
    expect(examples.length).toBeGreaterThan(0);
    for (const text of examples) {
      const result = validator('walkthrough.schema.json').safeParse(parse(text));
      expect(result.success, JSON.stringify(result.error?.issues)).toBe(true);
    }
  });
});
