/**
 * node --import tsx test/bench/slot-open.ts [--small 1000] [--large 10000] [--repeats 3]
 *
 * The schedule function's own duration (issue 25, item 2): with the slot opened through the open
 * queue, the schedule function (handlers/schedule.ts) reads the due accounts and enqueues open
 * messages — its time should grow with N only by that. Measured on the local stack (embedded
 * Postgres, the local SQS behind its SigV4 guard) with registry rows only (nothing is opened here:
 * the openers' work is the scale bench's), at `small` and `large` due accounts: the handler's wall
 * time per slot (warm instance, median of `repeats` slots of different days) and the split into
 * the registry/ledger reads and the sends. Prints one JSON line.
 */
import { resetLambdaDeps } from '../../src/run/lambda.js';
import type { SlotEnqueued } from '../../src/schedule/slots.js';
import { median, runStandalone } from './standalone.js';

interface Measured {
  accounts: number;
  messages: number;
  handler_seconds: number;
  enqueue_seconds: number;
  read_seconds: number;
  handler_ms_per_1000_accounts: number;
}

await runStandalone(import.meta.url, 'slot-open', 'slot_open', async ({ stack, pool, arg }) => {
  const small = Number(arg('small', '1000'));
  const large = Number(arg('large', '10000'));
  const repeats = Number(arg('repeats', '3'));
  process.env.DROPSHIP_LOG_LEVEL = 'silent';
  await resetLambdaDeps();
  const { handler } = await import('../../handlers/schedule.js');
  const addRows = async (from: number, to: number): Promise<void> => {
    await pool.query(
      `insert into dropship.destinations (account_id, plan, bucket, region, role_arn, external_id, source_schema)
       select 'bench' || lpad(i::text, 6, '0'), 'paid', 'bench-' || i, 'us-east-1',
              'arn:aws:iam::259999999999:role/dropship-export-' || i, 'ext-' || i, 'bench' || i
         from generate_series($1::int, $2::int - 1) i`,
      [from, to],
    );
    await pool.query('analyze dropship.destinations');
  };
  let dayOffset = 10;
  const slotAt = (): string =>
    `${new Date(Date.now() + dayOffset++ * 86_400_000).toISOString().slice(0, 10)}T04:00:00Z`;
  const measure = async (accounts: number): Promise<Measured> => {
    const handlerSeconds: number[] = [];
    const enqueueSeconds: number[] = [];
    const readSeconds: number[] = [];
    let messages = 0;
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      const out = (await handler({ time: slotAt() })) as SlotEnqueued;
      handlerSeconds.push((performance.now() - t0) / 1000);
      enqueueSeconds.push(out.seconds);
      readSeconds.push(out.readSeconds);
      if (out.accounts !== accounts) throw new Error(`expected ${accounts} accounts enqueued, got ${out.accounts}`);
      messages = out.messages;
      // The openers' side is not measured here: the local queue is emptied between slots.
      stack.sqs.queues.get(stack.openQueueUrl)!.messages.length = 0;
    }
    const h = median(handlerSeconds);
    return {
      accounts,
      messages,
      handler_seconds: Number(h.toFixed(3)),
      enqueue_seconds: Number(median(enqueueSeconds).toFixed(3)),
      read_seconds: Number(median(readSeconds).toFixed(3)),
      handler_ms_per_1000_accounts: Number(((h * 1000 * 1000) / accounts).toFixed(1)),
    };
  };
  await addRows(0, small);
  await handler({ time: slotAt() }); // the cold start (pool, schema check, SQS client) is not the slot's
  stack.sqs.queues.get(stack.openQueueUrl)!.messages.length = 0;
  const a = await measure(small);
  await addRows(small, large);
  const b = await measure(large);
  await resetLambdaDeps();
  return { small: a, large: b, ratio: Number((b.handler_seconds / a.handler_seconds).toFixed(2)) };
});
