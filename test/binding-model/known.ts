import type { Action, Sequence } from './actions.js';

/**
 * Days the binding model found (its shrunk counterexamples), replayed by name on every run, so each
 * stays checked whatever the seed. Findings 1–3 are issue 22's, found on the code before its fix.
 */
const fanOut: Action = { k: 'fanOut', crash: 'none' };
const deliver = (o: Partial<Extract<Action, { k: 'deliver' }>> = {}): Action => ({
  k: 'deliver',
  run: 0,
  msg: 0,
  dup: false,
  help: false,
  failReceipt: false,
  crash: 'none',
  ...o,
});
const readd: Action = { k: 'readd', pick: 0 };
const bucket: Action = { k: 'update', field: 'bucket', pick: 0 };

export const KNOWN_DAYS: (Sequence & { name: string })[] = [
  {
    name: 'finding 1: a fan-out run of the removed customer, delivered after the id was re-added, writes nothing into the new customer’s bucket',
    init: 0,
    actions: [fanOut, readd, deliver()],
  },
  {
    name: 'finding 1: the re-added customer’s first receipt starts a new chain (sequence 1)',
    init: 0,
    actions: [{ k: 'exportCli' }, readd, { k: 'exportCli' }],
  },
  {
    name: 'finding 1: the re-added customer’s first change set holds none of the old customer’s keys',
    init: 2,
    actions: [{ k: 'exportCli' }, { k: 'readd', pick: 10 }, { k: 'exportCli' }],
  },
  {
    name: 'finding 1: the old customer’s webhook event never reaches the new customer’s URL',
    init: 0,
    actions: [fanOut, deliver(), readd, deliver()],
  },
  {
    name: 'finding 2: a bucket change between two tasks of a fan-out run does not split the delivery',
    init: 0,
    actions: [fanOut, deliver(), bucket, deliver()],
  },
  {
    name: 'finding 2: a task does not take the codec of a later destination version',
    init: 0,
    actions: [fanOut, { k: 'update', field: 'codec', pick: 0 }, deliver()],
  },
  {
    name: 'finding 3: a finishing run (its receipt PUT failed) is not published into the bucket set afterwards',
    init: 0,
    actions: [fanOut, deliver({ help: true, failReceipt: true }), bucket, { k: 'exportCli' }],
  },
  {
    name: 'a run whose receipt was already PUT (its worker died right after) does not leave the chain to fork after an update',
    init: 0,
    actions: [fanOut, deliver({ help: true, crash: 'after-receipt-put' }), bucket, { k: 'exportCli' }],
  },
  {
    name: 'two CLI exports after a schema update: the second receipt follows the first (CI, 2026-12-05: the local S3 answered a PUT before storing it)',
    init: 14,
    actions: [
      { k: 'sweep', stale: false },
      { k: 'update', field: 'schema', pick: 3 },
      deliver({ run: 0, msg: 1, help: true, failReceipt: true }),
      { k: 'exportCli' },
      { k: 'exportCli' },
    ],
  },
];
