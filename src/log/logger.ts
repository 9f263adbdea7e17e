import { type Logger, pino } from 'pino';

/**
 * Structured JSON logs (one object per line) with `accountId`, `runId` and `table` bound by the
 * code that knows them. Secrets never reach a log: credential-, secret-, token- and external-ID
 * fields are redacted wherever they appear, and row data is never logged at all.
 */
export type { Logger };

const REDACT_PATHS = [
  'externalId',
  'external_id',
  'ExternalId',
  'credentials',
  'secretAccessKey',
  'SecretAccessKey',
  'sessionToken',
  'SessionToken',
  'password',
  'databaseUrl',
  '*.externalId',
  '*.external_id',
  '*.ExternalId',
  '*.credentials',
  '*.secretAccessKey',
  '*.SecretAccessKey',
  '*.sessionToken',
  '*.SessionToken',
  '*.password',
  '*.databaseUrl',
];

export function createLogger(
  opts: { level?: string; destination?: NodeJS.WritableStream | { write(msg: string): void } } = {},
): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: 'dropship' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    (opts.destination as pino.DestinationStream | undefined) ?? pino.destination({ fd: 2, sync: true }),
  );
}

/** Serialises an error for a log line: name, message and the chain of causes, no stack noise. */
export function errorFields(e: unknown): { error: string; errorName: string; causes?: string[] } {
  const err = e instanceof Error ? e : new Error(String(e));
  const causes: string[] = [];
  let c = err.cause;
  while (c && causes.length < 5) {
    causes.push(c instanceof Error ? `${c.name}: ${c.message}` : String(c));
    c = c instanceof Error ? c.cause : undefined;
  }
  return { error: err.message, errorName: err.name, ...(causes.length ? { causes } : {}) };
}
