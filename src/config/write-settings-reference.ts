import { writeFileSync } from 'node:fs';
import { settingsReference } from './settings-reference.js';

/** `npm run docs:settings`: rewrites docs/operations/settings.md from the settings schema. */
writeFileSync(new URL('../../docs/operations/settings.md', import.meta.url), settingsReference());
