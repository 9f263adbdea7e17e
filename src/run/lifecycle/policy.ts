import type { Settings } from '../../config/settings.js';

/**
 * How a table task's lifecycle (src/run/lifecycle/lifecycle.ts) behaves under each of the two drivers. The
 * drivers differ in who owns the run, and so in four decisions that always go together; a task
 * takes one of the two policies below, never a mix.
 */
export interface RunPolicy {
  readonly name: 'in-process' | 'fan-out';
  /**
   * A failed task is released for another attempt when its error says a retry can fix it
   * (`isRetryable`, src/contracts/errors.ts — not the destination refusing, not a value with no
   * exact form). When false every failure is final.
   */
  readonly retryRetryable: boolean;
  /** A task that fails for good fails its run at once (else the driver decides the run's end). */
  readonly failRunOnFinalFailure: boolean;
  /** The task that completes tries to finish the run (whoever completes the last one writes the receipt). */
  readonly finishAfterTask: boolean;
  /**
   * How often an exporting task checks its run, to stop (aborting its uploads) when the run was
   * cancelled or ended meanwhile; undefined when the driver's run owner watches the whole run.
   */
  watchEveryMs(settings: Pick<Settings, 'DROPSHIP_RUN_STALE_SECONDS'>): number | undefined;
}

/**
 * `dropship export` (src/run/drivers/in-process.ts): one process owns the run and its snapshot and exports every
 * table itself. It watches the run (RunOwner), decides the run's end once all tables are settled and
 * finishes it once; no task is retried — the operator's next run is the retry.
 */
const inProcess: RunPolicy = Object.freeze({
  name: 'in-process',
  retryRetryable: false,
  failRunOnFinalFailure: false,
  finishAfterTask: false,
  watchEveryMs: () => undefined,
});

/**
 * Lambda workers (src/run/drivers/task.ts): nobody owns the run as a whole. Each task is retried by the
 * queue when its error is retryable, fails the run when it fails for good, and the last task to
 * complete finishes the run; each task checks its run four times per DROPSHIP_RUN_STALE_SECONDS
 * (at least every 500 ms) so a cancel stops it within the bound.
 */
const fanOut: RunPolicy = Object.freeze({
  name: 'fan-out',
  retryRetryable: true,
  failRunOnFinalFailure: true,
  finishAfterTask: true,
  watchEveryMs: (settings: Pick<Settings, 'DROPSHIP_RUN_STALE_SECONDS'>) =>
    Math.max(500, (settings.DROPSHIP_RUN_STALE_SECONDS * 1000) / 4),
});

export const RunPolicy = Object.freeze({ inProcess, fanOut });
