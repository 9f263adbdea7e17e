/**
 * The test kit: what more than one test file needs, written once.
 *
 *   assertExact(h, customer)      the customer's data is exactly the source: receipt valid, every
 *                                 table compared value by value (Postgres vs DuckDB), row counts as
 *                                 the receipt says, no unfinished multipart upload (test/kit/exact.ts)
 *   dropship(stack, args, opts)   the `dropship` command in a child process against the local stack;
 *                                 dropshipAt(root, args) for an install elsewhere (test/kit/cli.ts)
 *   readReceipt(stack, customer)  the customer's receipt.json, read with the customer's own
 *                                 credentials (test/kit/receipt.ts)
 *   downloadKeys(stack, c, keys, dir)  objects of the customer's bucket, fetched with their credentials
 *   useHarness()                  the local stack for a test file, started and stopped with it
 *                                 (`const h = useHarness();`, test/kit/harness.ts)
 *   addDestination, runOf,        ledger-level tests (src/store/ledger/ledger.test.ts, sweep.test.ts,
 *   pastTheBound, taskResult,     lifecycle.test.ts): a registered destination, a run to open, time
 *   runWithTasksDone              moved past a run's bounds, a task's recorded result, a run whose
 *                                 tasks are all done (test/kit/runs.ts; import it and harness.ts
 *                                 directly to keep DuckDB out of a unit test)
 *
 * A new test file usually starts the stack with `useHarness()`, adds a
 * customer with `setupCustomer()` (src/devstack/demo.ts), exports, then calls `assertExact`. Add a
 * helper here when a second test file needs it; keep the strictest version when merging copies.
 */
export { type CliOptions, type CliResult, dropship, dropshipAt } from './cli.js';
export { assertExact, type ExactOptions } from './exact.js';
export { useHarness } from './harness.js';
export { downloadKeys, readReceipt } from './receipt.js';
export { addDestination, pastTheBound, runOf, runWithTasksDone, taskResult } from './runs.js';
