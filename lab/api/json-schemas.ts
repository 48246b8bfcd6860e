import * as z from 'zod';
import { topologySchema } from '../topology/schema.js';
import { walkthroughSchema } from '../verify/walkthrough.js';
import { workshopSchema } from '../workshop/schema.js';

/**
 * JSON Schemas of the three file kinds a user writes, made from the zod schemas the lab
 * validates with, so an editor (yaml-language-server: `# yaml-language-server: $schema=...`)
 * completes and checks the same fields. They describe the files as written (`io: 'input'`:
 * fields with a default are optional). Cross-field rules (a pod's node exists, an address lies
 * in its network, ...) are the lab's own checks and are not in them.
 * Shipped in schemas/; `npm run schemas` writes them, a unit test keeps them current.
 */
const FILES = {
  'topology.schema.json': {
    schema: topologySchema,
    title: 'kube-packet-lab topology',
    description: 'A lab: networks, routers, nodes, clients, pods and Services (topologies/<name>.yaml).',
  },
  'walkthrough.schema.json': {
    schema: walkthroughSchema,
    title: 'kube-packet-lab walkthrough',
    description: 'What lab verify sends and proves, step by step (topologies/<name>.walkthrough.yaml; docs/walkthrough-format.md).',
  },
  'workshop.schema.json': {
    schema: workshopSchema,
    title: 'kube-packet-lab workshop',
    description: 'A guided exercise checked against the live lab (topologies/<name>.workshop.yaml; docs/workshop.md).',
  },
} as const;

export type SchemaFile = keyof typeof FILES;
export const SCHEMAS_DIR = 'schemas';

/** The JSON Schema of each file kind, keyed by its file name under schemas/. */
export function jsonSchemas(): Record<SchemaFile, Record<string, unknown>> {
  const out = {} as Record<SchemaFile, Record<string, unknown>>;
  for (const [file, { schema, title, description }] of Object.entries(FILES) as [SchemaFile, (typeof FILES)[SchemaFile]][]) {
    const json = z.toJSONSchema(schema, { io: 'input' }) as Record<string, unknown>;
    const { $schema, ...rest } = json;
    out[file] = { $schema, title, description, ...rest };
  }
  return out;
}

/** The file's text as shipped: stable key order, two-space indent, final newline. */
export const schemaText = (schema: Record<string, unknown>) => `${JSON.stringify(schema, null, 2)}\n`;
