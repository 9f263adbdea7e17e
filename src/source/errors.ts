/** Errors of the source stage (reading PostgreSQL). */
export class SourceError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SourceError';
  }
}

/** A column or value that has no exact Parquet form under the current mapping. */
export class MappingError extends SourceError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MappingError';
  }
}
