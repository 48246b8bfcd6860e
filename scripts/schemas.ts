#!/usr/bin/env node
/**
 * Write the JSON Schemas of topology, walkthrough and workshop files to schemas/, from the zod
 * schemas the lab validates with. Run after changing a schema (a unit test fails until you do):
 *
 *   npm run schemas
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCHEMAS_DIR, jsonSchemas, schemaText } from '../lab/api/json-schemas.js';
import { PROJECT_ROOT } from '../lab/util/project.js';

for (const [file, schema] of Object.entries(jsonSchemas())) {
  const path = join(PROJECT_ROOT, SCHEMAS_DIR, file);
  writeFileSync(path, schemaText(schema));
  console.log(`wrote ${join(SCHEMAS_DIR, file)}`);
}
