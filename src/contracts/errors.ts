/**
 * dropship's one error family. Every error dropship throws on purpose is a `DropshipError`; each
 * stage keeps its own subclass (ConfigError, SourceError, MappingError, AwsError, …) with its own
 * class name, so `instanceof` checks and the `name` in log lines stay as specific as before.
 *
 * An error answers three questions, so nobody has to guess them from cause chains or code strings:
 *
 * - `code`: what kind of failure it is, a stable machine string per subclass (`mapping`,
 *   `destination-access`, `config` …).
 * - `retryable`: can a later attempt of the same work succeed without anyone changing anything?
 *   (A throttled or dropped connection: yes. A denied role, a missing bucket, a value with no exact
 *   Parquet form, a bad setting: no — someone has to act first.)
 * - `repeats`: will every later run fail the same way until someone acts (a value with no Parquet
 *   form, a bad setting)? Not the same as `retryable`: a run that lost its ownership is not retried,
 *   yet the next run succeeds. The customer's words follow it (src/notify/reasons.ts): a failure
 *   that repeats says dropship's operators must act, never that the next run will fix it.
 * - `customerMessage`: what a customer may be told (status.json, webhooks): no internal detail, no
 *   credentials, no external IDs, no row data. `message` stays the operator's detail.
 * - `badInput`: must a person fix what they gave (a flag, a setting, an account)? The CLI exits 2.
 *
 * A wrapper (an error created with a `cause`) answers like the nearest DropshipError among its
 * causes unless told otherwise, so wrapping never changes the verdict. Errors that are not
 * DropshipErrors — the AWS SDK's, pg's, Node's — are classified where they enter: AWS SDK errors by
 * their error code in one place (src/destinations/s3/clients.ts: `AwsError`, `isRetryableAws`); anything else
 * unknown is retryable (the task's attempts and the queue's receive count bound the retries).
 *
 * This module is the bottom of the dependency graph: it imports nothing from src.
 */

/** What a customer is told when nothing more specific is known: the problem is ours. */
export const INTERNAL_CUSTOMER_MESSAGE = 'the export failed on dropship’s side';

export interface DropshipErrorOptions extends ErrorOptions {
  /** Overrides the class's verdict (default: the cause's, else the class's own). */
  retryable?: boolean;
  /** Overrides whether later runs fail the same way (default: the cause's, else the class's own). */
  repeats?: boolean;
  /** Overrides the customer's sentence (default: the cause's, else the class's own). */
  customerMessage?: string;
}

/** A subclass's own verdict and customer sentence (see the DropshipError constructor). */
export interface DropshipErrorDefaults {
  retryable?: boolean;
  repeats?: boolean;
  customerMessage?: string;
}

export abstract class DropshipError extends Error {
  /** A stable machine string per subclass. */
  abstract readonly code: string;
  /** Can a later attempt of the same work succeed without anyone changing anything? */
  readonly retryable: boolean;
  /** Will every later run fail the same way until someone acts? (default false) */
  readonly repeats: boolean;
  /** What a customer may be told; `message` is the operator's detail. */
  readonly customerMessage: string;
  /**
   * Is the error in what a person gave dropship — a command line, a setting, an account, a file, a
   * webhook address, the dev stack they run? Then only that person can fix it: the CLI prints one
   * line and exits 2 (src/cli/main.ts). False unless the subclass says so; its subclasses inherit it.
   */
  readonly badInput: boolean = false;

  /**
   * @param defaults the subclass's own verdict and customer sentence, used when neither the caller
   *   nor a DropshipError among the causes gives one.
   */
  constructor(message: string, options: DropshipErrorOptions = {}, defaults: DropshipErrorDefaults = {}) {
    const { retryable, repeats, customerMessage, ...errorOptions } = options;
    super(message, errorOptions);
    const from = nearestDropshipError(errorOptions.cause);
    this.retryable = retryable ?? defaults.retryable ?? from?.retryable ?? true;
    this.repeats = repeats ?? defaults.repeats ?? from?.repeats ?? false;
    this.customerMessage =
      customerMessage ?? defaults.customerMessage ?? from?.customerMessage ?? INTERNAL_CUSTOMER_MESSAGE;
  }
}

/** The error itself when it is a DropshipError, else the first DropshipError among its causes. */
export function nearestDropshipError(e: unknown): DropshipError | undefined {
  let c: unknown = e;
  for (let depth = 0; c !== undefined && c !== null && depth < 16; depth++) {
    if (c instanceof DropshipError) return c;
    c = c instanceof Error ? c.cause : undefined;
  }
  return undefined;
}

/**
 * Can a later attempt of the same work succeed? Asks the nearest DropshipError (the error itself or
 * one of its causes); an error dropship does not know is retryable.
 */
export function isRetryable(e: unknown): boolean {
  return nearestDropshipError(e)?.retryable ?? true;
}

/**
 * Will every later run fail the same way until someone acts? Asks the nearest DropshipError; an
 * error dropship does not know is taken as transient.
 */
export function repeatsOf(e: unknown): boolean {
  return nearestDropshipError(e)?.repeats ?? false;
}

/** The sentence a customer may be told about this error (never its operator detail). */
export function customerMessageOf(e: unknown): string {
  return nearestDropshipError(e)?.customerMessage ?? INTERNAL_CUSTOMER_MESSAGE;
}

/** The error's machine code (`internal` for an error dropship does not know). */
export function errorCodeOf(e: unknown): string {
  return nearestDropshipError(e)?.code ?? 'internal';
}
