import fc from 'fast-check';

/**
 * The operator's and the platform's moves in the binding model (test/binding-model.test.ts). Each
 * action is a plain value whose parameters are interpreted against the model's state when it runs
 * (an index picks among what exists then), so every shrunk list is still a valid day.
 */
export const UPDATE_FIELDS = [
  'bucket',
  'prefix',
  'role',
  'schema',
  'codec',
  'changes',
  'excludeTables',
  'excludeColumns',
  'plan',
] as const;
export type UpdateField = (typeof UPDATE_FIELDS)[number];

export type FanOutCrash = 'none' | 'after-open-run' | 'after-send';
/** The worker dies (hangs for good, its source sessions ended) at this point of its task; 'none': it does not. */
export type TaskCrash = 'none' | 'after-last-task' | 'before-receipt-put' | 'after-receipt-put';

export type Action =
  /** `dropship export --account …`: the in-process driver (exportAccount). */
  | { k: 'exportCli' }
  /**
   * A fan-out run is started; its task messages are collected, not sent. `crash`: the opener dies
   * (hangs at the test crash point for good) after opening the run, or after sending its messages.
   */
  | { k: 'fanOut'; crash: FanOutCrash }
  /**
   * One collected message of an open fan-out run is delivered (out of order: `msg` picks any),
   * `dup` keeps it for a duplicate delivery, `help: false` kills the worker when it starts helping
   * with another task (a holder at its deadline: that task is abandoned mid-way), `failReceipt`
   * makes every receipt PUT of that run fail during the delivery (the run stays `finishing`).
   */
  | { k: 'deliver'; run: number; msg: number; dup: boolean; help: boolean; failReceipt: boolean; crash: TaskCrash }
  | { k: 'update'; field: UpdateField; pick: number }
  | { k: 'disable' }
  | { k: 'enable' }
  | { k: 'remove' }
  /** Remove if present, then add the same account id for ANOTHER customer (bucket, role, schema). */
  | { k: 'readd'; pick: number }
  /** The sweeper; `stale`: time passes first (every lease and heartbeat of the account is past its bound). */
  | { k: 'sweep'; stale: boolean }
  /** The source changes: a row of the current schema's table is inserted or deleted. */
  | { k: 'mutate'; pick: number }
  /** The current customer's webhook receiver goes down (answers 503) or comes back. */
  | { k: 'webhook'; down: boolean };

export interface Sequence {
  /** How the first customer is registered (prefix, codec, change sets). */
  init: number;
  actions: Action[];
}

const deliver = fc.record({
  k: fc.constant('deliver' as const),
  run: fc.nat(3),
  msg: fc.nat(3),
  dup: fc.boolean(),
  help: fc.constantFrom(true, true, false),
  failReceipt: fc.boolean(),
  crash: fc.constantFrom<TaskCrash>(
    'none',
    'none',
    'none',
    'after-last-task',
    'before-receipt-put',
    'after-receipt-put',
  ),
});

export const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { arbitrary: fc.constant({ k: 'exportCli' as const }), weight: 2 },
  {
    arbitrary: fc.record({
      k: fc.constant('fanOut' as const),
      crash: fc.constantFrom<FanOutCrash>('none', 'none', 'none', 'none', 'after-open-run', 'after-send'),
    }),
    weight: 4,
  },
  { arbitrary: deliver, weight: 7 },
  {
    arbitrary: fc.record({
      k: fc.constant('update' as const),
      field: fc.constantFrom(...UPDATE_FIELDS),
      pick: fc.nat(7),
    }),
    weight: 5,
  },
  { arbitrary: fc.constant({ k: 'disable' as const }), weight: 1 },
  { arbitrary: fc.constant({ k: 'enable' as const }), weight: 1 },
  { arbitrary: fc.constant({ k: 'remove' as const }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('readd' as const), pick: fc.nat(15) }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant('sweep' as const), stale: fc.boolean() }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant('mutate' as const), pick: fc.nat(7) }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('webhook' as const), down: fc.boolean() }), weight: 1 },
);

export function sequenceArb(exclude: ReadonlySet<string>): fc.Arbitrary<Sequence> {
  const action =
    exclude.size === 0
      ? actionArb
      : actionArb.filter((a) => !exclude.has(a.k) && !exclude.has(`update-${'field' in a ? a.field : ''}`));
  return fc.record({ init: fc.nat(15), actions: fc.array(action, { minLength: 3, maxLength: 6 }) });
}

/** One line per action, for traces and counterexamples. */
export function describeAction(a: Action): string {
  switch (a.k) {
    case 'deliver':
      return `deliver(run ${a.run}, msg ${a.msg}${a.dup ? ', dup' : ''}${a.help ? '' : ', no-help'}${a.failReceipt ? ', receipt PUT fails' : ''}${a.crash === 'none' ? '' : `, worker dies ${a.crash}`})`;
    case 'fanOut':
      return `fanOut${a.crash === 'none' ? '' : ` (the opener dies ${a.crash})`}`;
    case 'update':
      return `update ${a.field} (${a.pick})`;
    case 'readd':
      return `readd (${a.pick})`;
    case 'sweep':
      return `sweep${a.stale ? ' (after the stale bound)' : ''}`;
    case 'mutate':
      return `mutate (${a.pick})`;
    case 'webhook':
      return `webhook receiver ${a.down ? 'down' : 'up'}`;
    default:
      return a.k;
  }
}
