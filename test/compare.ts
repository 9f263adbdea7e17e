import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { parquetReadObjects } from 'hyparquet';
import { compressors as hyCompressors } from 'hyparquet-compressors';
import type pg from 'pg';
import type { ColumnInfo, Receipt } from '../src/contracts/receipt.js';
import { quoteIdent, quoteLiteral } from '../src/contracts/sql.js';
import { customerS3 } from '../src/devstack/demo.js';
import type { Principal } from '../src/devstack/iam.js';
import { TEXT_FORM_SETTINGS } from '../src/pipeline/source/snapshot.js';
import { duck } from './duck.js';

/**
 * Value-by-value comparison of a Postgres table with the Parquet files dropship wrote.
 * Every column becomes one canonical text per value on both sides — epoch microseconds for
 * timestamps and times, days for dates (±infinity as text), the exact decimal text for numerics,
 * hex for bytea, JSON arrays of canonical elements for lists — and the row multisets are compared.
 * Readers: DuckDB (exact, SQL-side canonicalisation) and hyparquet (a second, independent
 * implementation in JS; its DECIMAL values are JS numbers, so decimals are compared to 1e-12).
 */
type Family = 'int' | 'decimal' | 'float' | 'bool' | 'text' | 'uuid' | 'json' | 'bytea' | 'date' | 'timestamp' | 'time';

export function familyOf(col: Pick<ColumnInfo, 'parquet_type' | 'text_form'>): { family: Family; list: boolean } {
  const list = col.parquet_type.startsWith('LIST<');
  const t = list ? col.parquet_type.slice(5, -1) : col.parquet_type;
  const family: Family = col.text_form
    ? 'text'
    : t.includes('DECIMAL')
      ? 'decimal'
      : t.includes('TIMESTAMP')
        ? 'timestamp'
        : t.includes('TIME(')
          ? 'time'
          : t.includes('DATE')
            ? 'date'
            : t.includes('UUID')
              ? 'uuid'
              : t.includes('JSON')
                ? 'json'
                : t.startsWith('BYTE_ARRAY') && !t.includes('STRING') && !t.includes('ENUM')
                  ? 'bytea'
                  : t.startsWith('BYTE_ARRAY')
                    ? 'text'
                    : t === 'BOOLEAN'
                      ? 'bool'
                      : t === 'DOUBLE' || t === 'FLOAT'
                        ? 'float'
                        : 'int';
  return { family, list };
}

function pgScalar(v: string, f: Family): string {
  switch (f) {
    case 'timestamp':
      return `case when isfinite(${v}) then (extract(epoch from ${v}) * 1000000)::bigint::text else ${v}::text end`;
    case 'date':
      return `case when isfinite(${v}) then (${v} - date '1970-01-01')::text else ${v}::text end`;
    case 'time':
      return `(extract(epoch from ${v}) * 1000000)::bigint::text`;
    case 'bytea':
      return `encode(${v}, 'hex')`;
    case 'text':
      // format() uses the type's output function, as the export does (keeps char(n) padding).
      return `format('%s', ${v})`;
    default:
      return `${v}::text`;
  }
}

function duckScalar(v: string, f: Family): string {
  switch (f) {
    case 'timestamp':
      return `case when isinf(${v}) then ${v}::varchar else epoch_us(${v})::varchar end`;
    case 'date':
      return `case when isinf(${v}) then ${v}::varchar else (${v} - DATE '1970-01-01')::varchar end`;
    case 'time':
      return `epoch_us(${v})::varchar`;
    case 'bytea':
      return `lower(hex(${v}))`;
    case 'bool':
      return `case when ${v} then 'true' when not ${v} then 'false' end`;
    default:
      return `${v}::varchar`;
  }
}

function pgExpr(col: ColumnInfo): string {
  const c = quoteIdent(col.name);
  const { family, list } = familyOf(col);
  // num_nulls, not `is null`: a composite whose fields are all NULL is a value (`(,)`), not NULL.
  if (!list) return `case when num_nulls(${c}) = 1 then null else ${pgScalar(c, family)} end`;
  const element = `case when num_nulls(x) = 1 then null else ${pgScalar('x', family)} end`;
  return `case when num_nulls(${c}) = 1 then null else (select coalesce(json_agg(${element} order by o), '[]'::json) from unnest(${c}) with ordinality as u(x, o))::text end`;
}

function duckExpr(col: ColumnInfo): string {
  const c = quoteIdent(col.name, 'duckdb');
  const { family, list } = familyOf(col);
  if (!list) return duckScalar(c, family);
  return `case when ${c} is null then null else to_json(list_transform(${c}, x -> ${duckScalar('x', family)}))::varchar end`;
}

function normFloat(s: string | number | null, float32: boolean): string | null {
  if (s === null) return null;
  const str = String(s);
  let n =
    typeof s === 'number'
      ? s
      : /^-?inf(inity)?$/i.test(str)
        ? str.startsWith('-')
          ? -Infinity
          : Infinity
        : /^nan$/i.test(str)
          ? NaN
          : Number(str);
  // FLOAT columns: compare the float32 value itself (texts print the shortest float32 form).
  if (float32) n = Math.fround(n);
  return Object.is(n, -0) ? '-0' : String(n);
}

const isFloat32 = (col: Pick<ColumnInfo, 'parquet_type'>): boolean =>
  col.parquet_type.replace(/^LIST<|>$/g, '') === 'FLOAT';

/** Canonical text of one cell, after the SQL-side canonicalisation. */
function normalize(v: unknown, col: ColumnInfo): string | null {
  if (v === null || v === undefined) return null;
  const { family, list } = familyOf(col);
  const s = String(v);
  if (list) {
    const items = JSON.parse(s) as (string | null)[];
    return JSON.stringify(
      items.map((x) =>
        x === null
          ? null
          : family === 'float'
            ? normFloat(x, isFloat32(col))
            : family === 'json'
              ? JSON.stringify(JSON.parse(String(x)))
              : String(x),
      ),
    );
  }
  if (family === 'float') return normFloat(s, isFloat32(col));
  if (family === 'json') return JSON.stringify(JSON.parse(s));
  return s;
}

export interface TableDiff {
  table: string;
  pgRows: number;
  parquetRows: number;
  mismatches: number;
  examples: string[];
}

function diff(table: string, pgKeys: string[], pqKeys: string[]): TableDiff {
  pgKeys.sort();
  pqKeys.sort();
  let mismatches = 0;
  const examples: string[] = [];
  for (let i = 0; i < Math.max(pgKeys.length, pqKeys.length); i++) {
    if (pgKeys[i] !== pqKeys[i]) {
      mismatches++;
      if (examples.length < 3) examples.push(`postgres ${pgKeys[i]}\nparquet  ${pqKeys[i]}`);
    }
  }
  return { table, pgRows: pgKeys.length, parquetRows: pqKeys.length, mismatches, examples };
}

async function pgCanonical(
  client: pg.ClientBase,
  schema: string,
  table: string,
  columns: ColumnInfo[],
): Promise<(string | null)[][]> {
  await client.query(TEXT_FORM_SETTINGS);
  const sql = `select ${columns.map(pgExpr).join(', ')} from ${quoteIdent(schema)}.${quoteIdent(table)}`;
  const res = await client.query({ text: sql, rowMode: 'array' });
  return res.rows.map((r: unknown[]) => r.map((v, i) => normalize(v, columns[i]!)));
}

/** Postgres vs DuckDB, every value. */
export async function compareTable(
  client: pg.ClientBase,
  schema: string,
  table: string,
  columns: ColumnInfo[],
  files: string[],
): Promise<TableDiff> {
  const pgRows = await pgCanonical(client, schema, table, columns);
  const db = await duck();
  try {
    const list = `[${files.map((p) => quoteLiteral(p, 'duckdb')).join(', ')}]`;
    const rows = await db.all(
      `select ${columns.map((c, i) => `${duckExpr(c)} as c${i}`).join(', ')} from read_parquet(${list})`,
    );
    const pq = rows.map((r) => JSON.stringify(columns.map((c, i) => normalize(r[`c${i}`], c))));
    return diff(
      table,
      pgRows.map((r) => JSON.stringify(r)),
      pq,
    );
  } finally {
    db.close();
  }
}

const TS_INF = 0x7fffffffffffffffn;
const DATE_INF = 0x7fffffff;

/** hyparquet's JS value → the canonical text used above. */
function hyCanonical(v: unknown, family: Family, col: ColumnInfo): string | null {
  const column = col.name;
  if (v === null || v === undefined) return null;
  switch (family) {
    case 'timestamp': {
      const us = v as bigint;
      return us === TS_INF ? 'infinity' : us === -TS_INF ? '-infinity' : String(us);
    }
    case 'date':
      return v === DATE_INF ? 'infinity' : v === -DATE_INF ? '-infinity' : String(v);
    case 'time':
    case 'int':
      return String(v);
    case 'bool':
      return v ? 'true' : 'false';
    case 'float':
      return normFloat(v as number, isFloat32(col));
    case 'bytea':
      return Buffer.from(v as Uint8Array).toString('hex');
    case 'json':
      return JSON.stringify(JSON.parse(v as string));
    case 'uuid':
      return String(v).toLowerCase();
    case 'decimal':
      // hyparquet returns DECIMAL as a JS number: keep it numeric, compared with a tolerance.
      return `~${v as number}`;
    default:
      if (typeof v !== 'string') throw new Error(`column ${column}: expected a string from hyparquet, got ${typeof v}`);
      return v;
  }
}

function approxDecimal(pgText: string | null): string | null {
  return pgText === null ? null : `~${Number(pgText)}`;
}

/** Postgres vs hyparquet (the second reader), every value; decimals to 12 significant digits. */
export async function compareTableHyparquet(
  client: pg.ClientBase,
  schema: string,
  table: string,
  columns: ColumnInfo[],
  files: string[],
): Promise<TableDiff> {
  const pgRows = await pgCanonical(client, schema, table, columns);
  const fams = columns.map(familyOf);
  const round = (s: string | null): string | null =>
    s === null ? null : s.startsWith('~') ? `~${Number(Number(s.slice(1)).toPrecision(12))}` : s;
  const pgKeys = pgRows.map((r) =>
    JSON.stringify(
      r.map((v, i) => {
        const { family, list } = fams[i]!;
        if (family !== 'decimal') return v;
        if (!list) return round(approxDecimal(v));
        return v === null
          ? null
          : JSON.stringify((JSON.parse(v) as (string | null)[]).map((x) => round(approxDecimal(x))));
      }),
    ),
  );
  const pqKeys: string[] = [];
  for (const path of files) {
    const bytes = readFileSync(path);
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const rows = (await parquetReadObjects({
      file,
      // Decoders independent of the writer's encoders: node:zlib for GZIP (the writer uses libdeflate),
      // fzstd for ZSTD (the writer: node:zlib zstd), hyparquet's built-in SNAPPY.
      compressors: {
        GZIP: (input: Uint8Array) => new Uint8Array(gunzipSync(input)),
        ZSTD: hyCompressors.ZSTD!,
      },
      utf8: false,
      parsers: {
        timestampFromMicroseconds: (us: bigint) => us,
        dateFromDays: (d: number) => d,
        jsonFromBytes: (b: Uint8Array) => Buffer.from(b).toString('utf8'),
      },
    })) as Record<string, unknown>[];
    for (const row of rows) {
      pqKeys.push(
        JSON.stringify(
          columns.map((c, i) => {
            const { family, list } = fams[i]!;
            const v = row[c.name];
            if (!list) return round(hyCanonical(v, family, c));
            if (v === null || v === undefined) return null;
            return JSON.stringify((v as unknown[]).map((x) => round(hyCanonical(x, family, c))));
          }),
        ),
      );
    }
  }
  return diff(table, pgKeys, pqKeys);
}

export async function downloadReceiptFiles(
  endpoint: string,
  region: string,
  reader: Principal,
  bucket: string,
  receipt: Receipt,
  dir: string,
): Promise<Map<string, string[]>> {
  const s3 = customerS3(endpoint, region, reader);
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
