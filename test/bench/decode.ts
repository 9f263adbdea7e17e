/**
 * node --import tsx test/bench/decode.ts [--rows 200000] [--runs 9] [--baseline <tree>]
 *
 * The decoding hot path alone — a binary COPY stream → BinaryCopyDecoder → Parquet column builders —
 * with no Postgres, S3 or compression, so a change to the type registry or the decoder shows in CPU
 * time per row even on a loaded machine. The stream is the bench's `events` table (bigint, uuid,
 * timestamptz, text, jsonb, numeric(18,4), text[], boolean, double; ~10% NULLs), written in
 * Postgres' binary COPY format from a seeded generator and fed in 64 KiB chunks.
 *
 * `--baseline <tree>`: another checkout's root (e.g. `git archive <commit> src | tar -x -C /tmp/old`
 * plus a node_modules link); its src/source/{typemap,copy-decoder}.ts run in the same process,
 * alternating with this tree's, run by run, so both see the same machine load. Prints one JSON
 * line: CPU µs/row (median) per tree.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ColumnBuilder } from '../../src/pipeline/parquet/column.js';
import type { CompressionPool } from '../../src/pipeline/parquet/compression.js';
import type { ColumnPlan, PgTypeInfo } from '../../src/pipeline/source/typemap.js';
import { pgTypeInfo as pgType } from '../../src/pipeline/source/types/entry.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const rows = Number(arg('rows', '200000'));
const runs = Number(arg('runs', '9'));
const baseline = arg('baseline', '');
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Tree {
  name: string;
  planColumn: (
    col: { name: string; notNull: boolean; typeOid: number; typmod: number; pgType: string },
    types: Map<number, PgTypeInfo>,
  ) => ColumnPlan;
  Decoder: typeof import('../../src/pipeline/source/copy-decoder.js').BinaryCopyDecoder;
}

async function load(root: string, name: string): Promise<Tree> {
  const typemap = (await import(
    join(root, 'src/pipeline/source/typemap.ts')
  )) as typeof import('../../src/pipeline/source/typemap.js');
  const decoder = (await import(
    join(root, 'src/pipeline/source/copy-decoder.ts')
  )) as typeof import('../../src/pipeline/source/copy-decoder.js');
  return { name, planColumn: typemap.planColumn, Decoder: decoder.BinaryCopyDecoder };
}

const TYPES = new Map(
  [
    pgType(20, 'int8'),
    pgType(2950, 'uuid'),
    pgType(1184, 'timestamptz'),
    pgType(25, 'text'),
    pgType(3802, 'jsonb'),
    pgType(1700, 'numeric'),
    pgType(1009, '_text', { typcategory: 'A', typelem: 25 }),
    pgType(16, 'bool'),
    pgType(701, 'float8'),
  ].map((t) => [t.oid, t]),
);
const NUMERIC_18_4 = ((18 << 16) | 4) + 4;
const COLUMNS = [
  { name: 'id', notNull: true, typeOid: 20, typmod: -1, pgType: 'bigint' },
  { name: 'event_id', notNull: false, typeOid: 2950, typmod: -1, pgType: 'uuid' },
  { name: 'occurred_at', notNull: false, typeOid: 1184, typmod: -1, pgType: 'timestamptz' },
  { name: 'event_type', notNull: false, typeOid: 25, typmod: -1, pgType: 'text' },
  { name: 'properties', notNull: false, typeOid: 3802, typmod: -1, pgType: 'jsonb' },
  { name: 'revenue', notNull: false, typeOid: 1700, typmod: NUMERIC_18_4, pgType: 'numeric(18,4)' },
  { name: 'tags', notNull: false, typeOid: 1009, typmod: -1, pgType: 'text[]' },
  { name: 'is_conversion', notNull: false, typeOid: 16, typmod: -1, pgType: 'boolean' },
  { name: 'score', notNull: false, typeOid: 701, typmod: -1, pgType: 'double precision' },
];

/** The events table in binary COPY format (header, `n` tuples, trailer). */
function eventsStream(n: number): Buffer {
  let seed = 0x2545f491;
  const random = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const out = Buffer.alloc(n * 260 + 64);
  let p = 0;
  const i16 = (v: number): void => {
    p = out.writeInt16BE(v, p);
  };
  const i32 = (v: number): void => {
    p = out.writeInt32BE(v, p);
  };
  const str = (s: string): void => {
    const len = out.write(s, p + 4);
    i32(len);
    p += len;
  };
  const maybe = (write: () => void): void => {
    if (random() < 0.1) i32(-1);
    else write();
  };
  p += Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1').copy(out, 0);
  i32(0);
  i32(0);
  const t0 = Date.UTC(2023, 0, 1) * 1000 - 946_684_800_000_000;
  const types = ['page_view', 'form_submit', 'ad_click', 'email_open', 'meeting'];
  for (let i = 1; i <= n; i++) {
    i16(COLUMNS.length);
    i32(8);
    p = out.writeBigInt64BE(BigInt(i), p);
    i32(16);
    for (let k = 0; k < 16; k++) out[p++] = Math.floor(random() * 256);
    i32(8);
    p = out.writeBigInt64BE(BigInt(t0 + i * 1_000_000 + (i % 997)), p);
    str(types[i % 5]!);
    maybe(() => {
      const json = `{"n": ${i}, "ref": "${(i * 2654435761).toString(16).padStart(8, '0').repeat(4)}", "path": "/p/${i % 97}"}`;
      const len = out.write(json, p + 5);
      i32(len + 1);
      out[p++] = 1;
      p += len;
    });
    maybe(() => {
      // numeric(18,4): up to ±1,000,000 with 4 decimals, as base-10000 digits.
      const cents = Math.floor(random() * 2e10) - 1e10;
      const abs = Math.abs(cents);
      const digits = [Math.floor(abs / 1e8), Math.floor(abs / 1e4) % 1e4, abs % 1e4];
      while (digits.length > 1 && digits[0] === 0) digits.shift();
      i32(8 + 2 * digits.length);
      i16(digits.length);
      i16(digits.length - 2);
      out.writeUInt16BE(cents < 0 ? 0x4000 : 0, p);
      p += 2;
      i16(4);
      for (const d of digits) i16(d);
    });
    maybe(() => {
      const tags = [`tag${i % 13}`, `tag${i % 7}`];
      const lenAt = p;
      p += 4;
      i32(1);
      i32(0);
      i32(25);
      i32(tags.length);
      i32(1);
      for (const t of tags) str(t);
      out.writeInt32BE(p - lenAt - 4, lenAt);
    });
    maybe(() => {
      i32(1);
      out[p++] = random() < 0.05 ? 1 : 0;
    });
    maybe(() => {
      i32(8);
      p = out.writeDoubleBE(random() * 100, p);
    });
  }
  i16(-1);
  return out.subarray(0, p);
}

/** Builders that never cut a page (nothing to compress): decoding only. */
const noPool = {
  compress: () => Promise.reject(new Error('no page is cut in this bench')),
} as unknown as CompressionPool;

function decodeOnce(tree: Tree, stream: Buffer, outputs?: Buffer[][]): number {
  const plans = COLUMNS.map((c) => tree.planColumn(c, TYPES));
  const cols = plans.map((pl) => new ColumnBuilder(pl.spec, { pageSize: 2 ** 31, pool: noPool }));
  const decoder = new tree.Decoder(plans, () => cols, { columns: plans.map((pl) => pl.name) });
  const c0 = process.cpuUsage();
  for (let i = 0; i < stream.length; i += 65_536) {
    decoder.feed(stream.subarray(i, i + 65_536));
    decoder.run(
      () => {},
      () => false,
    );
  }
  decoder.end();
  const c = process.cpuUsage(c0);
  if (decoder.rows !== rows) throw new Error(`${tree.name}: decoded ${decoder.rows} rows, expected ${rows}`);
  outputs?.push(cols.map((col) => Buffer.from(col.values.buf.subarray(0, col.values.pos))));
  return (c.user + c.system) / rows;
}

const trees = [await load(REPO_ROOT, 'this tree'), ...(baseline ? [await load(baseline, 'baseline')] : [])];
const stream = eventsStream(rows);
// Warm-up: both trees' code optimised before anything is timed; both must write the same values.
const outputs: Buffer[][] = [];
for (const t of trees) for (let w = 0; w < 2; w++) decodeOnce(t, stream, w === 0 ? outputs : undefined);
for (const [k, col] of COLUMNS.entries())
  if (outputs.some((o) => !o[k]!.equals(outputs[0]![k]!))) throw new Error(`column ${col.name}: the trees differ`);
const samples = new Map<string, number[]>(trees.map((t) => [t.name, []]));
for (let r = 0; r < runs; r++) {
  // Alternate which tree goes first, so neither always runs on a warmer (or busier) machine.
  for (const t of r % 2 ? [...trees].reverse() : trees) samples.get(t.name)!.push(decodeOnce(t, stream));
}
const result = Object.fromEntries(
  [...samples].map(([name, s]) => [
    name,
    { cpu_us_per_row_median: Number(median(s).toFixed(4)), samples: s.map((v) => Number(v.toFixed(4))) },
  ]),
);
process.stdout.write(`${JSON.stringify({ bench: 'decode', rows, runs, bytes: stream.length, result })}\n`);
