/**
 * What `dropship dev` and `dropship demo` load through src/cli/dev-tooling.ts (the only door from
 * production code to the local stack).
 */
export { runDemo } from './demo-command.js';
export { runDev } from './dev.js';
