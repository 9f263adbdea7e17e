import { objectKey } from '../../accounts/destination.js';
import type { DestinationCompression, Layout } from '../../contracts/receipt.js';

/**
 * Object layout, compatible with the model we follow (Dreamdata "Destination AWS S3"):
 *   <prefix>/receipt.json
 *   <prefix>/<YYYY-MM-DDTHH:MM>/<table>/<table>_<12-digit shard>.parquet.gz
 * The folder is the run's start time in UTC (or the next minute no run at the same place used: a folder holds one
 * run, see `OpenRun.folder`). Files are Parquet with the GZIP codec inside;
 * the file itself is not gzip-wrapped (the `.gz` suffix is the model's naming). Files of any other
 * codec (zstd, snappy, none) are named `.parquet` in both layouts: `.gz` would be a false promise.
 */
const RECEIPT_NAME = 'receipt.json';
const SHARD_SUFFIX: Record<Layout, string> = { dreamdata: '.parquet.gz', portable: '.parquet' };

/** `2023-01-02T15:04` (dreamdata) or `20230102T1504Z` (portable: no colon). */
export function folderName(runStart: Date, layout: Layout = 'dreamdata'): string {
  const iso = runStart.toISOString();
  if (layout === 'dreamdata') return iso.slice(0, 16);
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}Z`;
}

export { tableObjectName } from '../../contracts/object-names.js';

function shardName(
  objectName: string,
  index: number,
  layout: Layout = 'dreamdata',
  compression: DestinationCompression = 'gzip',
): string {
  const suffix = compression === 'gzip' ? SHARD_SUFFIX[layout] : '.parquet';
  return `${objectName}_${String(index).padStart(12, '0')}${suffix}`;
}

export function tableFolder(folder: string, objectName: string): string {
  return `${folder}/${objectName}`;
}

export function shardKey(
  dest: { prefix: string; layout: Layout; compression?: DestinationCompression },
  folder: string,
  objectName: string,
  index: number,
): string {
  return objectKey(
    dest,
    `${tableFolder(folder, objectName)}/${shardName(objectName, index, dest.layout, dest.compression ?? 'gzip')}`,
  );
}

export function receiptKey(dest: { prefix: string }): string {
  return objectKey(dest, RECEIPT_NAME);
}
