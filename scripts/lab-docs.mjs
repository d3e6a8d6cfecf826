// `npm run lab-docs` (after a build): docs/labs.md and the JSON Schemas labs/lab.schema.json and
// labs/topology.schema.json, made from the zod schemas (src/model/lab.ts, src/model/schema.ts);
// test/unit/lab-format.test.ts fails when a committed file no longer matches them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { labJsonSchema, labReference, topologyJsonSchema } from '../dist/model/lab-doc.js';

mkdirSync('docs', { recursive: true });
writeFileSync('docs/labs.md', labReference());
writeFileSync('labs/lab.schema.json', JSON.stringify(labJsonSchema(), null, 2) + '\n');
writeFileSync('labs/topology.schema.json', JSON.stringify(topologyJsonSchema(), null, 2) + '\n');
process.stdout.write('docs/labs.md, labs/lab.schema.json, labs/topology.schema.json: written\n');
