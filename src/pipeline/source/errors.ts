import { DropshipError, type DropshipErrorDefaults, type DropshipErrorOptions } from '../../contracts/errors.js';

/** Errors of the source stage (reading PostgreSQL): retryable (a snapshot, a connection, a stream). */
export class SourceError extends DropshipError {
  readonly code: string = 'source';
  constructor(message: string, options?: DropshipErrorOptions, defaults?: DropshipErrorDefaults) {
    super(message, options, defaults);
    this.name = 'SourceError';
  }
}

/**
 * A column or value that has no exact Parquet form under the current mapping. Not retryable, and it
 * repeats: every later run reads the same value until the data or the mapping changes.
 */
export class MappingError extends SourceError {
  override readonly code: string = 'mapping';
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options, {
      retryable: false,
      repeats: true,
      customerMessage:
        'a table holds a column or value that dropship cannot export exactly; dropship’s operators are alerted',
    });
    this.name = 'MappingError';
  }
}

/**
 * A row longer than DROPSHIP_MAX_ROW_BYTES: a capacity bound the operator sets, not a type-mapping problem (its own
 * code, for alerts and runbooks). Not retryable, and it repeats until the row shrinks or the bound is raised. A
 * MappingError still, so every path that keeps a mapping problem's class (the reading threads) keeps its kind.
 */
export class RowTooLarge extends MappingError {
  override readonly code: string = 'row-too-large';
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, {
      customerMessage: 'a table holds a row larger than dropship is set to export; dropship’s operators are alerted',
      ...options,
    });
    this.name = 'RowTooLarge';
  }
}

/** The refusal ./types/text.ts raises through a failing integer cast, as Postgres reports it. */
const OWN_REFUSAL =
  /^invalid input syntax for type integer: "(\d+-dimensional array in column .*: multi-dimensional arrays are not supported yet)"$/s;

/** Names of the data exceptions a COPY can meet (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
const DATA_EXCEPTIONS: Record<string, string> = {
  '22001': 'string data right truncation',
  '22003': 'numeric value out of range',
  '22007': 'invalid datetime format',
  '22008': 'datetime field overflow',
  '22012': 'division by zero',
  '22021': 'character not in repertoire',
  '22023': 'invalid parameter value',
  '22P02': 'invalid text representation',
  '22P03': 'invalid binary representation',
  '22P05': 'untranslatable character',
};

/**
 * Postgres refused to send a stored value (SQLSTATE class 22, data exception — e.g. 22021: bytes that are not valid
 * in the client's encoding, stored in a SQL_ASCII database): as a MappingError, which names the SQLSTATE and repeats
 * until the data is fixed. Postgres' own words quote the value (`invalid input syntax for type integer: "…"`, the
 * offending bytes), and no row data may reach a log: the message and the cause kept name the SQLSTATE only. Any
 * other error comes back undefined (a dropped connection, a cancel: retryable as they are).
 */
export function sourceDataError(e: unknown, table?: string): MappingError | undefined {
  const code = (e as { code?: unknown; severity?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^22[0-9A-Z]{3}$/.test(code) || !(e instanceof Error) || !('severity' in e))
    return undefined;
  // dropship's own refusal, raised in SQL by a failing cast (./types/text.ts: a multi-dimensional array in text form):
  // its words are dropship's (a column name, a dimension count), kept as they are.
  const own = OWN_REFUSAL.exec(e.message)?.[1];
  if (own !== undefined) return new MappingError(`${table !== undefined ? `table ${table}: ` : ''}${own}`);
  const what = `SQLSTATE ${code}${DATA_EXCEPTIONS[code] ? `: ${DATA_EXCEPTIONS[code]}` : ', a data exception'}`;
  // Shaped as node-pg's DatabaseError (name, code, severity) so that callers reading the SQLSTATE still find it.
  const cause = Object.assign(
    new Error(`Postgres refused to send a value (${what}; its own words, which quote the value, are not kept)`),
    { name: 'DatabaseError', code, severity: 'ERROR' },
  );
  return new MappingError(
    `${table !== undefined ? `table ${table}: ` : ''}Postgres cannot send one of its values (${what}); every run reads it again until the value is corrected, or its column or table is left out (--exclude-columns, --exclude-tables)`,
    { cause },
  );
}
