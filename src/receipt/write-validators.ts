import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { VALIDATORS_PATH, validatorsText } from './schema-validators.js';

writeFileSync(VALIDATORS_PATH, validatorsText());
process.stdout.write(`wrote ${fileURLToPath(VALIDATORS_PATH)}\n`);
