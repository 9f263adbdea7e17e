import { ConfigError } from './settings.js';

/** What a person does about a password (or user name) with a character that ends its part of a URL. */
export const PERCENT_ENCODE =
  'percent-encode special characters in the user name and password (# as %23, / as %2F, ? as %3F, @ as %40, : as %3A, % as %25)';

/**
 * Why pg cannot use the connection URL `url`, in words that never hold the URL or its password; undefined when
 * nothing is known to be wrong. `e` is what pg threw when it parsed the URL (it does so only when it connects:
 * `new URL`'s "Invalid URL", or the error of reading the file sslrootcert, sslcert or sslkey names). Without `e`,
 * only what pg would take without a word: a `#` ends a URL, so pg drops what follows (a password cut short, its
 * first part read as the host or port).
 */
export function databaseUrlProblem(url: string, e?: unknown): string | undefined {
  if (url.includes('#')) return `it has a "#", which ends a URL (what follows would be dropped): ${PERCENT_ENCODE}`;
  if (e === undefined) return undefined;
  const err = (e ?? {}) as { code?: unknown; syscall?: unknown; message?: unknown };
  if (err.code === 'ERR_INVALID_URL') {
    // The URL with its user and password replaced: if that parses, they are what is wrong.
    const withoutLogin = url.replace(/^([a-z]+:\/\/)[\s\S]*@/i, '$1user:password@');
    if (withoutLogin !== url && URL.canParse(withoutLogin)) return `it is not a valid URL: ${PERCENT_ENCODE}`;
    const port = /^[a-z]+:\/\/(?:[^@]*@)?(?:\[[^\]]*\]|[^:/?]*):([^/?]*)/i.exec(withoutLogin)?.[1];
    if (port !== undefined && port !== '' && !(/^\d+$/.test(port) && Number(port) >= 1 && Number(port) <= 65535))
      return `its port "${port}" is not a number from 1 to 65535`;
    return `it is not a valid postgres://user:password@host:port/database URL: ${PERCENT_ENCODE}`;
  }
  if (err.syscall === 'open' && typeof err.message === 'string')
    return `a file it names (sslrootcert, sslcert or sslkey) cannot be read: ${err.message}`;
  const message = typeof err.message === 'string' ? err.message.split(url).join('(the URL)') : String(e);
  return `pg cannot use it: ${message}`;
}

/** The ConfigError (exit 2 in the CLI) for the URL in `setting` that pg cannot use (see databaseUrlProblem). */
export function unusableDatabaseUrl(url: string, setting: string, e?: unknown): ConfigError | undefined {
  const problem = databaseUrlProblem(url, e);
  if (problem === undefined) return undefined;
  return new ConfigError(`${setting} cannot be used: ${problem}`, e === undefined ? undefined : { cause: e });
}
