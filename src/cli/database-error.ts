import { unusableDatabaseUrl } from '../config/database-url.js';
import { DropshipError } from '../contracts/errors.js';

/**
 * A database the configuration names that cannot be reached or refuses dropship's login: a wrong
 * password or user, a database that does not exist, a host that does not resolve or answer. The
 * configuration is the person's to fix: one line naming the host, port and database (never the
 * password, never a stack) and exit 2 (bad input or configuration, docs/operations/cli.md).
 */
export class DatabaseConnectionError extends DropshipError {
  readonly code: string = 'database-connection';
  override readonly badInput: boolean = true;
  constructor(message: string, options: { cause: unknown }) {
    super(message, options, { retryable: false });
    this.name = 'DatabaseConnectionError';
  }
}

/** SQLSTATEs a server answers a login with that a person must fix: bad credentials, no such database, no access. */
const LOGIN_REFUSED = new Set(['28000', '28P01', '3D000', '42501']);
/** Errors of reaching the server at all (Node's socket and DNS errors). */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
]);

/** Where a postgres:// URL points, without its user's password: `database "db" on host:port`. */
export function databaseWhere(url: string): string {
  // A `#` ends the URL: what precedes it may be a password's first part read as the host or port.
  if (url.includes('#')) return 'the database its URL names (it is not a valid postgres:// URL)';
  try {
    const u = new URL(url);
    const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default)';
    const host = decodeURIComponent(u.hostname) || 'localhost';
    return `database "${database}" on ${host}:${u.port || '5432'}`;
  } catch {
    return 'the database its URL names (it is not a valid postgres:// URL)';
  }
}

/** Is `e` the server refusing the login, or the server not reached at all (DNS, refused, timed out)? */
export function isConnectionFailure(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown } | null;
  if (!err || typeof err !== 'object') return false;
  if (typeof err.code === 'string' && (LOGIN_REFUSED.has(err.code) || UNREACHABLE.has(err.code))) return true;
  // An unreachable host can surface as an AggregateError (every address refused) or pg's connect timeout.
  if (e instanceof AggregateError) return e.errors.some(isConnectionFailure);
  return (
    typeof err.message === 'string' && /timeout expired|connection timeout|does not support SSL/i.test(err.message)
  );
}

/**
 * Is `e` pg failing to parse the connection URL as it connects: `new URL`'s "Invalid URL" (a password with an
 * unencoded `#` or `/`, a port past 65535), or reading the file its sslrootcert, sslcert or sslkey names?
 */
export function isUrlFailure(e: unknown): boolean {
  const err = e as { code?: unknown; syscall?: unknown } | null;
  if (!err || typeof err !== 'object') return false;
  return err.code === 'ERR_INVALID_URL' || (err.syscall === 'open' && typeof err.code === 'string');
}

/**
 * Runs `fn`, which connects to the database `url` (`setting` names where it is configured): a connection failure
 * becomes one DatabaseConnectionError line; a URL pg cannot use one ConfigError line naming the setting and what to
 * do (src/config/database-url.ts), never the URL. Anything else is rethrown as it is.
 */
export async function connecting<T>(url: () => string, setting: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isUrlFailure(e)) throw unusableDatabaseUrl(url(), setting, e) ?? e;
    if (!isConnectionFailure(e)) throw e;
    const reason =
      e instanceof AggregateError ? e.errors.map((x) => (x as Error).message).join('; ') : (e as Error).message;
    throw new DatabaseConnectionError(
      `cannot connect to ${databaseWhere(url())} (${setting}): ${reason.replace(/\s+/g, ' ').trim()}`,
      { cause: e },
    );
  }
}
