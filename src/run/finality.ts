import { DestinationAccessError, isDestinationProblem } from '../aws/clients.js';
import { MappingError } from '../source/errors.js';

/** Errors a retry cannot fix: the destination refuses, or a value has no exact Parquet form. */
export function isFinal(e: unknown): boolean {
  const cause = (e as Error).cause;
  return (
    isDestinationProblem(cause) ||
    cause instanceof DestinationAccessError ||
    e instanceof MappingError ||
    cause instanceof MappingError
  );
}
