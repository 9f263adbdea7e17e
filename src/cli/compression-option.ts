import { Option } from 'commander';
import { COMPRESSION_CHOICES, type DestinationCompression } from '../contracts/receipt.js';

/**
 * `--compression` on `destinations add` (and `destinations update`): the flag and its mapping to the
 * destination field, in one place so every command that sets it behaves the same.
 */
export const COMPRESSION_HELP =
  'Parquet page codec: gzip (the default; .parquet.gz in the dreamdata layout), zstd, snappy or none (.parquet)';

export function compressionOption(defaultValue?: DestinationCompression): Option {
  const option = new Option('--compression <codec>', COMPRESSION_HELP).choices(COMPRESSION_CHOICES);
  return defaultValue ? option.default(defaultValue) : option;
}

/** The destination field for a parsed `--compression` (nothing when the flag was not given). */
export function compressionField(o: { compression?: string }): { compression?: DestinationCompression } {
  return o.compression ? { compression: o.compression as DestinationCompression } : {};
}
