/**
 * The test kit: the three things most integration tests need, written once.
 *
 *   assertExact(h, customer)      the customer's data is exactly the source: receipt valid, every
 *                                 table compared value by value (Postgres vs DuckDB), row counts as
 *                                 the receipt says, no unfinished multipart upload (test/kit/exact.ts)
 *   dropship(stack, args, opts)   the `dropship` command in a child process against the local stack;
 *                                 dropshipAt(root, args) for an install elsewhere (test/kit/cli.ts)
 *   readReceipt(stack, customer)  the customer's receipt.json, read with the customer's own
 *                                 credentials (test/kit/receipt.ts)
 *   addDestination, runOf,        ledger-level tests (src/run/ledger.test.ts, sweep.test.ts,
 *   pastTheBound                  lifecycle.test.ts): a registered destination, a run to open, and
 *                                 time moved past a run's bounds (test/kit/runs.ts; import it
 *                                 directly to keep DuckDB out of a unit test)
 *
 * A new test file usually starts the stack with `startHarness()` (test/stack/harness.ts), adds a
 * customer with `setupCustomer()` (test/stack/demo.ts), exports, then calls `assertExact`. Add a
 * helper here when a second test file needs it; keep the strictest version when merging copies.
 */
export { type CliOptions, type CliResult, dropship, dropshipAt } from './cli.js';
export { assertExact, type ExactOptions } from './exact.js';
export { readReceipt } from './receipt.js';
export { addDestination, pastTheBound, runOf } from './runs.js';
