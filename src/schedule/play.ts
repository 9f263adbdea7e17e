import type { OpenSender } from '../contracts/open.js';
import { errorFields, type Logger } from '../log/logger.js';
import { processOpenEvent } from './open.js';
import { type EnqueueOptions, enqueueSlot, type SlotDeps, type SlotEnqueued, type SlotRun } from './slots.js';

/**
 * A slot opened the production way, without AWS: the schedule function's code (`enqueueSlot`) sends
 * the slot's open messages to the open queue (the dev stack's SQS, src/devstack/sqs.ts, or a real
 * one), then `openers` loops in this process play Lambda's SQS event source for the open-runs
 * function: receive a message, hand it to the function's code (`processOpenEvent`, what
 * handlers/open-runs.ts calls; `playOpenQueue` takes any handler, e.g. the handler itself), delete it unless it was
 * reported as a batch item failure (then it comes back after its visibility timeout), until the open
 * queue is empty. The opened runs' table tasks are on the task queue (DROPSHIP_TASK_QUEUE_URL) for
 * workers, as in production (`dropship export --via-queue`'s loops, src/run/drivers/via-queue.ts).
 */
export interface OpenQueueClient extends OpenSender {
  receive(
    max: number,
    waitSeconds: number,
    signal?: AbortSignal,
    visibilitySeconds?: number,
  ): Promise<{ messageId: string; receiptHandle: string; body: string }[]>;
  delete(receiptHandle: string): Promise<void>;
  backlog(): Promise<number>;
}

export interface PlayOptions {
  /** Open-runs "instances" working the queue at once (default 2). */
  openers?: number;
  /** Messages per invocation (the openRuns function's batchSize in serverless.yml is 1). */
  batchSize?: number;
  /** How long a received message stays invisible (default: the queue's own visibility timeout). */
  visibilitySeconds?: number;
  /** Give up (throw) when the queue is not empty after this long (default 900 s). */
  timeoutSeconds?: number;
  /** Where a failed delete is logged. */
  log?: Logger;
}

/** The function invoked with each SQS event: the open-runs function's code, or its handler. */
export type OpenHandler = (event: {
  Records: { messageId: string; receiptHandle: string; body: string }[];
}) => Promise<{
  batchItemFailures: { itemIdentifier: string }[];
  runs?: SlotRun[];
}>;

export interface PlayResult {
  /** Every account outcome the invocations returned, in the order they came. */
  runs: SlotRun[];
  /** Invocations (one per received batch). */
  invocations: number;
  /** Messages reported as batch item failures (each comes back). */
  failures: number;
  seconds: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Plays the open-runs function's SQS event source until the open queue is empty. */
export async function playOpenQueue(
  queue: OpenQueueClient,
  handle: OpenHandler,
  opts: PlayOptions = {},
): Promise<PlayResult> {
  const t0 = performance.now();
  const deadline = t0 + (opts.timeoutSeconds ?? 900) * 1000;
  const out: PlayResult = { runs: [], invocations: 0, failures: 0, seconds: 0 };
  const loop = async (n: number): Promise<void> => {
    for (;;) {
      if (performance.now() > deadline)
        throw new Error(`the open queue was not empty after ${opts.timeoutSeconds ?? 900} s`);
      const received = await queue.receive(opts.batchSize ?? 1, 0, undefined, opts.visibilitySeconds);
      if (received.length === 0) {
        if ((await queue.backlog()) === 0) return;
        await sleep(100); // in flight elsewhere, or handed back: it comes back
        continue;
      }
      out.invocations++;
      const res = await handle({ Records: received });
      out.runs.push(...(res.runs ?? []));
      const failed = new Set(res.batchItemFailures.map((f) => f.itemIdentifier));
      out.failures += failed.size;
      for (const m of received) {
        if (failed.has(m.messageId)) continue;
        await queue.delete(m.receiptHandle).catch((e: unknown) => {
          opts.log?.warn(
            { opener: n, ...errorFields(e) },
            'could not delete an open message; it will be delivered again',
          );
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.openers ?? 2) }, (_, i) => loop(i)));
  out.seconds = (performance.now() - t0) / 1000;
  return out;
}

export interface SlotOpened {
  enqueued: SlotEnqueued;
  /** Per account, as the open-runs invocations returned them. */
  runs: SlotRun[];
  /** The schedule function's own time (enqueue only). */
  enqueueSeconds: number;
  /** Schedule event → every open message handled (every run open, its tasks queued). */
  openSeconds: number;
  invocations: number;
  failures: number;
}

/**
 * "Run a slot the production way locally" up to the workers: the schedule function's code, then the
 * open queue played until empty. `deps.opens` must be the open queue itself (it is both sent to and
 * received from); the task queue (`deps.queue`) receives the runs' table tasks.
 */
export async function openSlotViaQueue(
  deps: SlotDeps & { opens: OpenQueueClient },
  slot: string,
  slotDate: string,
  opts: PlayOptions & EnqueueOptions = {},
): Promise<SlotOpened> {
  const t0 = performance.now();
  const enqueued = await enqueueSlot(deps, slot, slotDate, opts);
  const played = await playOpenQueue(deps.opens, (event) => processOpenEvent(event, deps), {
    log: deps.log,
    ...opts,
  });
  return {
    enqueued,
    runs: played.runs,
    enqueueSeconds: enqueued.seconds,
    openSeconds: (performance.now() - t0) / 1000,
    invocations: played.invocations,
    failures: played.failures,
  };
}
