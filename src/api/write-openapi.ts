import { writeFileSync } from 'node:fs';
import { CLIENT_TYPES_PATH, clientTypesText, OPENAPI_PATH, openApiText } from './openapi-files.js';

/** `npm run docs:openapi`: rewrites schemas/openapi.json from the API's routes and the client types from it. */
const root = new URL('../../', import.meta.url);
const doc = openApiText();
writeFileSync(new URL(OPENAPI_PATH, root), doc);
writeFileSync(new URL(CLIENT_TYPES_PATH, root), await clientTypesText(doc));
