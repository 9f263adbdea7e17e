import { fileURLToPath } from 'node:url';

/** The repository (package) root: where `.dropship/` lives for the dev stack and the demo. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
