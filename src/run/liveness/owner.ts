import { hostname } from 'node:os';
import type { PoolClient } from 'pg';
import { DropshipError } from '../../contracts/errors.js';
import { errorFields, type Logger } from '../../log/logger.js';
import type { Ledger } from '../../store/ledger/ledger.js';

/**
 * The liveness of an in-process run (`dropship export`): its owner
 *   - holds a session advisory lock on a dedicated ledger connection (released by Postgres the
 *     moment the process dies, so the next run ends a killed CLI's run at once), and
 *   - heartbeats the run row every quarter of DROPSHIP_RUN_STALE_SECONDS (a frozen or partitioned
 *     owner whose connection lingers is ended once its heartbeat is that old).
 * It also watches: when the run was ended by someone else (`runs cancel`, or declared abandoned),
 * or the ledger has been unreachable for half the stale bound, `signal` aborts with the reason, so
 * the owner stops, aborts its uploads and never writes a receipt.
 */
export function cliOwnerId(): string {
  return `cli:${hostname()}:${process.pid}`;
}

/** The run was ended or taken over by someone else. Not retryable. */
export class OwnerLost extends DropshipError {
  readonly code: string = 'owner-lost';
  constructor(message: string) {
    super(message, undefined, { retryable: false });
    this.name = 'OwnerLost';
  }
}

export class RunOwner {
  private readonly stop = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private lock: { client: PoolClient; release: () => void } | undefined;
  private lockBroken = false;
  private lastOk = Date.now();
  private ticking = false;

  private constructor(
    private readonly ledger: Ledger,
    readonly runId: string,
    private readonly opts: RunOwnerOptions,
  ) {}

  /** Takes the owner lock (before the run row exists, so a live owner is never mistaken for a dead one). */
  static async lock(ledger: Ledger, runId: string, opts: RunOwnerOptions): Promise<RunOwner> {
    const owner = new RunOwner(ledger, runId, opts);
    await owner.takeLock();
    return owner;
  }

  get signal(): AbortSignal {
    return this.stop.signal;
  }

  /** Starts heartbeating (after the run row was inserted). */
  start(ping?: () => Promise<void>): void {
    this.lastOk = Date.now();
    const every = Math.max(200, intervalMs(this.opts));
    this.timer = setInterval(() => void this.tick(ping), every);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // Unlock before closing, so the very next run already sees the owner gone.
    await this.lock?.client.query('select pg_advisory_unlock_all()').catch(() => {});
    this.lock?.release();
    this.lock = undefined;
  }

  private async takeLock(): Promise<void> {
    this.lock = await this.ledger.ownerLock(this.runId);
    this.lockBroken = false;
    this.lock.client.on('error', () => {
      this.lockBroken = true;
    });
  }

  private async tick(ping?: () => Promise<void>): Promise<void> {
    if (this.ticking || this.stop.signal.aborted) return;
    this.ticking = true;
    try {
      if (this.lockBroken) {
        this.lock?.release();
        this.lock = undefined;
        await this.takeLock();
      }
      const status = await this.ledger.heartbeat(this.runId);
      if (status !== 'running' && status !== 'finishing') {
        const run = await this.ledger.getRun(this.runId);
        this.stop.abort(
          new OwnerLost(`run ${this.runId} was ${status ?? 'removed'}: ${run?.error ?? 'no reason recorded'}`),
        );
        return;
      }
      this.lastOk = Date.now();
      await ping?.().catch(() => {});
    } catch (e) {
      const silent = (Date.now() - this.lastOk) / 1000;
      this.opts.log?.warn({ runId: this.runId, silentSeconds: silent, ...errorFields(e) }, 'run heartbeat failed');
      if (silent > this.opts.staleSeconds / 2) {
        this.stop.abort(
          new OwnerLost(
            `run ${this.runId}: the ledger was unreachable for ${Math.round(silent)} s (over half of DROPSHIP_RUN_STALE_SECONDS); stopping so the run can be ended safely`,
          ),
        );
      }
    } finally {
      this.ticking = false;
    }
  }
}

export interface RunOwnerOptions {
  staleSeconds: number;
  /** The snapshot holder's idle-in-transaction timeout (pings must come more often). */
  idleInTransactionSeconds?: number;
  log?: Logger;
}

function intervalMs(o: RunOwnerOptions): number {
  const quarter = (o.staleSeconds * 1000) / 4;
  return o.idleInTransactionSeconds ? Math.min(quarter, (o.idleInTransactionSeconds * 1000) / 3) : quarter;
}
