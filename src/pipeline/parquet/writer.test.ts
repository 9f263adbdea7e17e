import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { duck } from '../../../test/duck.js';
import { quoteLiteral } from '../../contracts/sql.js';
import { storedGzip } from './compression.js';
import type { ColumnSpec } from './schema.js';
import { ParquetWriter } from './writer.js';

const dir = mkdtempSync(join(tmpdir(), 'dropship-parquet-'));
let db: Awaited<ReturnType<typeof duck>>;
beforeAll(async () => {
  db = await duck();
});
afterAll(() => db.close());

async function writeFile(specs: ColumnSpec[], fill: (w: ParquetWriter) => Promise<void>, opts = {}): Promise<string> {
  const parts: Buffer[] = [];
  const w = new ParquetWriter(
    specs,
    { pageSize: 1024, gzipLevel: 6, rowGroupRows: 1000, rowGroupBytes: 1 << 20, ...opts },
    async (b) => {
      parts.push(Buffer.from(b));
    },
  );
  await fill(w);
  await w.finish();
  const path = join(dir, `f${Math.random().toString(36).slice(2)}.parquet.gz`);
  writeFileSync(path, Buffer.concat(parts));
  return path;
}

describe('ParquetWriter row-group bound', () => {
  it('flushes at rowGroupBytes also when its pages were compressed in a worker (pages above 16 KiB)', async () => {
    // Prepare: ~200 bytes a row of random (incompressible) text in 64 KiB pages, so every page goes
    // to a compression worker (its buffer is transferred); 20,000 rows ≈ 4 MB uncompressed.
    const specs: ColumnSpec[] = [
      { name: 's', nullable: false, leaf: { physical: 'BYTE_ARRAY', logical: { type: 'STRING' } } },
    ];
    const rows = 20_000;
    // Act: at most 1 MiB uncompressed per row group, no row bound that would cut first.
    const path = await writeFile(
      specs,
      async (w) => {
        for (let r = 0; r < rows; r++) {
          const v = Buffer.from(randomBytes(100).toString('hex'));
          w.columns[0]!.bytes(v, 0, v.length);
          w.endRow();
          if (w.shouldFlush) await w.flushRowGroup();
        }
      },
      { pageSize: 64 * 1024, rowGroupRows: 1_000_000, rowGroupBytes: 1 << 20 },
    );
    // Assess: ≈ 4 MB in row groups near 1 MiB — the bound is checked every 256 rows and a column's
    // dictionary, tried first, is counted only once it falls back, so a group may reach ~1.5 MiB
    // (7,168 rows here); before the fix a single group held all 20,000 rows.
    const [meta] = await db.all(
      `select count(distinct row_group_id)::int as groups, max(row_group_num_rows)::int as most from parquet_metadata(${quoteLiteral(path, 'duckdb')})`,
    );
    expect(meta!.groups).toBeGreaterThanOrEqual(3);
    expect(meta!.most).toBeLessThanOrEqual(2 * Math.ceil((1 << 20) / 204));
    const [count] = await db.all(`select count(*)::int as n from read_parquet(${quoteLiteral(path, 'duckdb')})`);
    expect(count!.n).toBe(rows);
  });

  it('keeps the bound with large rows too: 256 KiB rows, 1 MiB groups, never 256 rows in one', async () => {
    // Prepare: incompressible 256 KiB values (a bytea of documents); the byte sum is not left to every 256th row
    const specs: ColumnSpec[] = [{ name: 'blob', nullable: false, leaf: { physical: 'BYTE_ARRAY' } }];
    const value = randomBytes(256 * 1024);
    const rows = 64;
    // Act
    const path = await writeFile(
      specs,
      async (w) => {
        for (let r = 0; r < rows; r++) {
          w.columns[0]!.bytes(value, 0, value.length);
          w.endRow();
          if (w.shouldFlush) await w.flushRowGroup();
        }
      },
      { pageSize: 64 * 1024, rowGroupRows: 1_000_000, rowGroupBytes: 1 << 20 },
    );
    // Assess: groups of about 4 rows (1 MiB), at most one row over (the dictionary is tried first), never all 64
    const [meta] = await db.all(
      `select count(distinct row_group_id)::int as groups, max(row_group_num_rows)::int as most from parquet_metadata(${quoteLiteral(path, 'duckdb')})`,
    );
    expect(meta!.most).toBeLessThanOrEqual(8);
    expect(meta!.groups).toBeGreaterThanOrEqual(8);
  });
});

describe('ParquetWriter read back by DuckDB', () => {
  it('round-trips ints, floats, strings, nulls and lists across pages and row groups', async () => {
    // Prepare
    const specs: ColumnSpec[] = [
      { name: 'id', nullable: false, leaf: { physical: 'INT64' } },
      { name: 'i', nullable: true, leaf: { physical: 'INT32' } },
      { name: 'd', nullable: true, leaf: { physical: 'DOUBLE' } },
      { name: 's', nullable: true, leaf: { physical: 'BYTE_ARRAY', logical: { type: 'STRING' } } },
      { name: 'b', nullable: true, leaf: { physical: 'BOOLEAN' } },
      { name: 'tags', nullable: true, leaf: { physical: 'BYTE_ARRAY', logical: { type: 'STRING' } }, list: true },
    ];
    const n = 5000;
    const expected: unknown[][] = [];
    const path = await writeFile(specs, async (w) => {
      const [id, i, d, s, b, tags] = w.columns;
      for (let r = 0; r < n; r++) {
        const big = r === 0 ? 9223372036854775807n : r === 1 ? -9223372036854775808n : BigInt(r) * 1_000_000_007n;
        id!.int64(big);
        if (r % 7 === 0) i!.nullValue();
        else i!.int32(r % 3 === 0 ? -r : r);
        if (r % 11 === 0) d!.nullValue();
        else d!.double(r / 3);
        const str = r % 5 === 0 ? '' : `žluťoučký ${r} 🚀`;
        if (r % 13 === 0) s!.nullValue();
        else {
          const bytes = Buffer.from(str);
          s!.bytes(bytes, 0, bytes.length);
        }
        if (r % 17 === 0) b!.nullValue();
        else b!.boolean(r % 2 === 0);
        let list: (string | null)[] | null;
        if (r % 4 === 0) {
          tags!.nullValue();
          list = null;
        } else {
          list = r % 4 === 1 ? [] : r % 4 === 2 ? ['a', null, `t${r}`] : [`x${r}`];
          tags!.beginList();
          for (const t of list) {
            if (t === null) tags!.nullElement();
            else tags!.bytes(Buffer.from(t), 0, Buffer.byteLength(t));
          }
          tags!.endList();
        }
        w.endRow();
        if (w.shouldFlush) await w.flushRowGroup();
        expected.push([
          big,
          r % 7 === 0 ? null : r % 3 === 0 ? -r : r,
          r % 11 === 0 ? null : r / 3,
          r % 13 === 0 ? null : str,
          r % 17 === 0 ? null : r % 2 === 0,
          list,
        ]);
      }
    });
    // Act
    const rows = await db.all(
      `select * exclude (file_row_number) from read_parquet(${quoteLiteral(path, 'duckdb')}, file_row_number = true) order by file_row_number`,
    );
    const meta = await db.all(
      `select count(distinct row_group_id) as groups from parquet_metadata(${quoteLiteral(path, 'duckdb')})`,
    );
    // Assess
    expect(rows.length).toBe(n);
    expect(Number(meta[0]!.groups)).toBe(5);
    rows.forEach((row, r) => {
      expect([row.id, row.i, row.d, row.s, row.b, row.tags]).toEqual(expected[r]);
    });
  });

  it('writes a valid file with zero rows', async () => {
    const path = await writeFile([{ name: 'x', nullable: true, leaf: { physical: 'INT32' } }], async () => {});
    const rows = await db.all(`select count(*) as n from read_parquet(${quoteLiteral(path, 'duckdb')})`);
    expect(Number(rows[0]!.n)).toBe(0);
  });

  it('writes statistics that give the same filter results with pruning on and off', async () => {
    const specs: ColumnSpec[] = [
      { name: 'id', nullable: false, leaf: { physical: 'INT64' } },
      { name: 's', nullable: false, leaf: { physical: 'BYTE_ARRAY', logical: { type: 'STRING' } } },
    ];
    const path = await writeFile(
      specs,
      async (w) => {
        for (let r = 0; r < 3000; r++) {
          w.columns[0]!.int64(BigInt(r) * 10_000_000_000n - 5n);
          const s = Buffer.from(`k${String(r).padStart(5, '0')}`);
          w.columns[1]!.bytes(s, 0, s.length);
          w.endRow();
          if (w.shouldFlush) await w.flushRowGroup();
        }
      },
      { rowGroupRows: 250 },
    );
    const q = `select count(*) as n from read_parquet(${quoteLiteral(path, 'duckdb')}) where id > 10000000000000 and s < 'k02500'`;
    const pruned = await db.all(q);
    await db.all("set disabled_optimizers = 'filter_pushdown,statistics_propagation'");
    const unpruned = await db.all(q);
    await db.all("set disabled_optimizers = ''");
    expect(Number(pruned[0]!.n)).toBe(1499);
    expect(Number(unpruned[0]!.n)).toBe(1499);
  });

  it('dictionary-encodes low-cardinality strings and falls back to PLAIN where a dictionary does not pay', async () => {
    // Prepare
    const specs: ColumnSpec[] = [
      { name: 'kind', nullable: true, leaf: { physical: 'BYTE_ARRAY', logical: { type: 'STRING' } } },
      { name: 'unique', nullable: false, leaf: { physical: 'BYTE_ARRAY', logical: { type: 'STRING' } } },
      { name: 'tags', nullable: true, leaf: { physical: 'BYTE_ARRAY', logical: { type: 'STRING' } }, list: true },
    ];
    const kinds = ['page_view', 'form_submit', 'ad_click', 'ünï'];
    const n = 6000;
    const path = await writeFile(
      specs,
      async (w) => {
        const [kind, unique, tags] = w.columns;
        for (let r = 0; r < n; r++) {
          if (r % 9 === 0) kind!.nullValue();
          else kind!.bytes(Buffer.from(kinds[r % 4]!), 0, Buffer.byteLength(kinds[r % 4]!));
          const u = Buffer.from(`id-${r}-${'x'.repeat(r % 7)}`);
          unique!.bytes(u, 0, u.length);
          tags!.beginList();
          if (r % 3 === 0) tags!.nullElement();
          const t = Buffer.from(kinds[(r + 1) % 4]!);
          tags!.bytes(t, 0, t.length);
          tags!.endList();
          w.endRow();
          if (w.shouldFlush) await w.flushRowGroup();
        }
      },
      { pageSize: 64 * 1024, rowGroupRows: 3000 },
    );
    // Act
    const meta = await db.all(
      `select path_in_schema, encodings from parquet_metadata(${quoteLiteral(path, 'duckdb')})`,
    );
    const rows = await db.all(
      `select kind, "unique", tags from read_parquet(${quoteLiteral(path, 'duckdb')}, file_row_number = true) order by file_row_number`,
    );
    // Assess
    const enc = (col: string) =>
      new Set(meta.filter((m) => String(m.path_in_schema).startsWith(col)).map((m) => String(m.encodings)));
    expect([...enc('kind')].every((e) => e.includes('RLE_DICTIONARY'))).toBe(true);
    expect([...enc('tags')].every((e) => e.includes('RLE_DICTIONARY'))).toBe(true);
    expect([...enc('unique')].every((e) => e.includes('PLAIN'))).toBe(true);
    expect(rows).toHaveLength(n);
    rows.forEach((row, r) => {
      expect(row.kind).toBe(r % 9 === 0 ? null : kinds[r % 4]);
      expect(row.unique).toBe(`id-${r}-${'x'.repeat(r % 7)}`);
      expect(row.tags).toEqual(r % 3 === 0 ? [null, kinds[(r + 1) % 4]] : [kinds[(r + 1) % 4]]);
    });
  });

  it('keeps dictionary entries apart when their hashes collide', async () => {
    // Known FNV-1a 32-bit collisions: each pair hashes alike.
    const words = ['costarring', 'liquid', 'declinate', 'macallums', 'altarage', 'zinke', 'altarages', 'zinkes'];
    const path = await writeFile(
      [{ name: 'w', nullable: false, leaf: { physical: 'BYTE_ARRAY', logical: { type: 'STRING' } } }],
      async (w) => {
        for (let r = 0; r < 4000; r++) {
          const b = Buffer.from(words[r % words.length]!);
          w.columns[0]!.bytes(b, 0, b.length);
          w.endRow();
        }
      },
    );
    const meta = await db.all(`select encodings from parquet_metadata(${quoteLiteral(path, 'duckdb')})`);
    expect(String(meta[0]!.encodings)).toContain('RLE_DICTIONARY');
    const rows = await db.all(
      `select w from read_parquet(${quoteLiteral(path, 'duckdb')}, file_row_number = true) order by file_row_number`,
    );
    expect(rows.map((r) => r.w)).toEqual(Array.from({ length: 4000 }, (_, r) => words[r % words.length]));
  });
});

describe('ParquetWriter dictionary lookup', () => {
  it('finds every entry again while its lookup table grows (700 distinct values, many more than it starts with)', async () => {
    // Prepare: 700 values cycled over 6,000 rows: few enough distinct values for the dictionary to pay.
    const value = (r: number): string => `v${(r * 7919) % 700}`;
    // Act
    const path = await writeFile(
      [{ name: 'w', nullable: false, leaf: { physical: 'BYTE_ARRAY', logical: { type: 'STRING' } } }],
      async (w) => {
        for (let r = 0; r < 6000; r++) {
          const b = Buffer.from(value(r));
          w.columns[0]!.bytes(b, 0, b.length);
          w.endRow();
        }
      },
      { pageSize: 1 << 20, rowGroupRows: 10_000 },
    );
    // Assess: dictionary-encoded, every row read back as written.
    const meta = await db.all(`select encodings from parquet_metadata(${quoteLiteral(path, 'duckdb')})`);
    expect(String(meta[0]!.encodings)).toContain('RLE_DICTIONARY');
    const rows = await db.all(
      `select w from read_parquet(${quoteLiteral(path, 'duckdb')}, file_row_number = true) order by file_row_number`,
    );
    expect(rows.map((r) => r.w)).toEqual(Array.from({ length: 6000 }, (_, r) => value(r)));
  });
});

describe('ParquetWriter codecs', () => {
  it.each(['gzip', 'zstd', 'snappy', 'none'] as const)(
    '%s pages (compressible text, incompressible random bytes) read back exactly by DuckDB',
    async (compression) => {
      // Prepare: random 16-byte values do not compress, so GZIP switches to stored blocks after the first page.
      const specs: ColumnSpec[] = [
        { name: 'id', nullable: false, leaf: { physical: 'INT64' } },
        { name: 'u', nullable: true, leaf: { physical: 'FIXED_LEN_BYTE_ARRAY', typeLength: 16 } },
        { name: 'j', nullable: true, leaf: { physical: 'BYTE_ARRAY', logical: { type: 'JSON' } } },
      ];
      const uuids: Buffer[] = [];
      const n = 20_000;
      const path = await writeFile(
        specs,
        async (w) => {
          const [id, u, j] = w.columns;
          for (let r = 0; r < n; r++) {
            id!.int64(BigInt(r));
            const x = randomBytes(16);
            uuids.push(x);
            if (r % 10 === 9) u!.nullValue();
            else u!.fixed(x, 0);
            const s = Buffer.from(JSON.stringify({ path: `/p/${r % 97}`, n: r }));
            j!.bytes(s, 0, s.length);
            w.endRow();
            if (w.shouldFlush) await w.flushRowGroup();
          }
        },
        { compression, pageSize: 64 * 1024, rowGroupRows: 8000 },
      );
      // Act
      const rows = await db.all(
        `select id, hex(u) as u, j::varchar as j from read_parquet(${quoteLiteral(path, 'duckdb')}) order by id`,
      );
      const codecs = await db.all(`select distinct compression from parquet_metadata(${quoteLiteral(path, 'duckdb')})`);
      // Assess
      expect(codecs.map((c) => c.compression)).toEqual([
        { gzip: 'GZIP', zstd: 'ZSTD', snappy: 'SNAPPY', none: 'UNCOMPRESSED' }[compression],
      ]);
      expect(rows.length).toBe(n);
      rows.forEach((row, r) => {
        expect(row.u).toBe(r % 10 === 9 ? null : uuids[r]!.toString('hex').toUpperCase());
        expect(JSON.parse(row.j as string)).toEqual({ path: `/p/${r % 97}`, n: r });
      });
    },
  );

  it('a stored-block GZIP member is valid GZIP (gunzip gives the input back)', () => {
    const raw = randomBytes(200_000);
    expect(gunzipSync(storedGzip(raw)).equals(raw)).toBe(true);
    expect(gunzipSync(storedGzip(Buffer.alloc(0))).length).toBe(0);
  });
});
