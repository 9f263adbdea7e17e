import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import type { Receipt } from '../src/receipt/receipt.js';
import { quoteIdent } from '../src/source/errors.js';
import { duck, sqlString } from './duck.js';
import type { Principal } from './stack/iam.js';

/**
 * Value-by-value comparison of a Postgres table with the Parquet files dropship wrote, read by
 * DuckDB. Each column is turned into one canonical text form on both sides (epoch microseconds
 * for timestamps, days for dates, the exact decimal text for numerics, JSON for lists…), then
 * the row multisets are compared.
 */
function pgExpr(col: string, type: string): string {
  const c = quoteIdent(col);
  if (type.endsWith('[]')) return `array_to_json(${c})::text`;
  if (type.startsWith('timestamp')) return `(extract(epoch from ${c}) * 1000000)::bigint::text`;
  if (type === 'date') return `(${c} - date '1970-01-01')::text`;
  if (type === 'bytea') return `encode(${c}, 'hex')`;
  // format() uses the type's output function (keeps char(n) padding); it turns NULL into ''.
  return `case when ${c} is null then null else format('%s', ${c}) end`;
}

function duckExpr(col: string, type: string): string {
  const c = `"${col.replaceAll('"', '""')}"`;
  if (type.endsWith('[]')) return `to_json(${c})::varchar`;
  if (type.startsWith('timestamp')) return `epoch_us(${c})::varchar`;
  if (type === 'date') return `(${c} - DATE '1970-01-01')::varchar`;
  if (type === 'bytea') return `lower(hex(${c}))`;
  if (type === 'boolean') return `case when ${c} then 'true' when not ${c} then 'false' end`;
  return `${c}::varchar`;
}

function normalize(v: unknown, type: string): string | null {
  if (v === null || v === undefined) return null;
  const s = String(v);
  if (type === 'boolean') return s === 't' || s === 'true' ? 'true' : 'false';
  if (type === 'double precision' || type === 'real') {
    const n = /^-?inf(inity)?$/i.test(s)
      ? s.startsWith('-')
        ? -Infinity
        : Infinity
      : /^nan$/i.test(s)
        ? NaN
        : Number(s);
    return Object.is(n, -0) ? '-0' : String(n);
  }
  if (type.endsWith('[]') || type === 'json' || type === 'jsonb') return JSON.stringify(JSON.parse(s));
  return s;
}

export interface TableDiff {
  table: string;
  pgRows: number;
  parquetRows: number;
  mismatches: number;
  examples: string[];
}

export async function downloadReceiptFiles(
  endpoint: string,
  region: string,
  reader: Principal,
  bucket: string,
  receipt: Receipt,
  dir: string,
): Promise<Map<string, string[]>> {
  const s3 = new S3Client({
    region,
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: reader.accessKeyId, secretAccessKey: reader.secretAccessKey },
  });
  const out = new Map<string, string[]>();
  for (const [table, t] of Object.entries(receipt.tables)) {
    const paths: string[] = [];
    for (const f of t.files) {
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: f.key }));
      const bytes = Buffer.from(await res.Body!.transformToByteArray());
      const path = join(dir, f.key);
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, bytes);
      paths.push(path);
    }
    out.set(table, paths);
  }
  s3.destroy();
  return out;
}

export async function compareTable(
  client: pg.ClientBase,
  schema: string,
  table: string,
  columns: { name: string; postgres_type: string }[],
  files: string[],
): Promise<TableDiff> {
  const pgSql = `select ${columns.map((c) => pgExpr(c.name, c.postgres_type)).join(', ')} from ${quoteIdent(schema)}.${quoteIdent(table)}`;
  const pgRes = await client.query({ text: pgSql, rowMode: 'array' });
  const db = await duck();
  try {
    const list = `[${files.map(sqlString).join(', ')}]`;
    const dkSql = `select ${columns.map((c, i) => `${duckExpr(c.name, c.postgres_type)} as c${i}`).join(', ')} from read_parquet(${list})`;
    const dkRows = await db.all(dkSql);
    const key = (cells: (string | null)[]): string => JSON.stringify(cells);
    const pgKeys = pgRes.rows
      .map((r: unknown[]) => key(r.map((v, i) => normalize(v, columns[i]!.postgres_type))))
      .sort();
    const dkKeys = dkRows.map((r) => key(columns.map((c, i) => normalize(r[`c${i}`], c.postgres_type)))).sort();
    let mismatches = 0;
    const examples: string[] = [];
    const n = Math.max(pgKeys.length, dkKeys.length);
    for (let i = 0; i < n; i++) {
      if (pgKeys[i] !== dkKeys[i]) {
        mismatches++;
        if (examples.length < 3) examples.push(`postgres ${pgKeys[i]}\nparquet  ${dkKeys[i]}`);
      }
    }
    return { table, pgRows: pgKeys.length, parquetRows: dkKeys.length, mismatches, examples };
  } finally {
    db.close();
  }
}
