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
