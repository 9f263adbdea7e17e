/**
 * node --import tsx test/bench/huge-value.ts [--decoder 64,128,256] [--e2e 64,128,256] [--chunk 65536]
 *
 * One huge value (issue 22, finding 8):
 *   1. the binary COPY decoder alone, fed one tuple holding one bytea value of N MiB in chunks of
 *      `--chunk` bytes (pg-copy-streams hands over ~64 KiB chunks) into a real Parquet column
 *      builder: seconds and the bytes the decoder copied to join chunks;
 *   2. end to end: a table with one row whose text value is N MiB, exported by dropship to the
 *      local S3 (snapshot, binary COPY, decode, GZIP page compression, multipart upload, receipt).
 * Linear means seconds/MiB stays flat as N doubles. Prints a table on stderr, one JSON line on stdout.
 * `--e2e ''` skips the end-to-end part (no local stack started).
 */
import { formatBytes, renderTable } from '../../src/cli/format.js';
import { setupCustomer } from '../../src/devstack/demo.js';
import { createLogger } from '../../src/log/logger.js';
import { ColumnBuilder } from '../../src/pipeline/parquet/column.js';
import { BinaryCopyDecoder } from '../../src/pipeline/source/copy-decoder.js';
import { DecodeKind } from '../../src/pipeline/source/typemap.js';
import { exportAccount } from '../../src/run/drivers/in-process.js';
import { LogReporter } from '../../src/run/progress/reporter.js';
import { startHarness } from '../kit/stack-harness.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
};
const list = (s: string): number[] => s.split(',').filter(Boolean).map(Number);
const decoderSizes = list(arg('decoder', '64,128,256'));
const e2eSizes = list(arg('e2e', '64,128,256'));
const chunkSize = Number(arg('chunk', '65536'));
const MiB = 1024 * 1024;
const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

/** Header, one tuple (int4 id, bytea of `bytes`), trailer — as chunks of `chunkSize`, made lazily. */
function* copyChunks(bytes: number): Generator<Buffer> {
  const head = Buffer.alloc(19 + 2 + 8 + 4);
  Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1').copy(head, 0);
  head.writeInt16BE(2, 19);
  head.writeInt32BE(4, 21);
  head.writeInt32BE(1, 25);
  head.writeInt32BE(bytes, 29);
  const tail = Buffer.from([0xff, 0xff]);
  const total = head.length + bytes + tail.length;
  const pattern = Buffer.alloc(chunkSize, 0x61);
  for (let off = 0; off < total; off += chunkSize) {
    const n = Math.min(chunkSize, total - off);
    const chunk = Buffer.allocUnsafe(n); // a fresh buffer per chunk, like a socket read
    pattern.copy(chunk, 0, 0, n);
    if (off < head.length) head.copy(chunk, 0, off, Math.min(head.length, off + n));
    if (off + n > total - 2) tail.copy(chunk, n - (total - Math.max(off, total - 2)), Math.max(0, off - (total - 2)));
    yield chunk;
  }
}

function decoderRun(mib: number): { mib: number; seconds: number; copied_bytes: number; s_per_mib: number } {
  const cols = [
    new ColumnBuilder({ name: 'id', nullable: false, leaf: { physical: 'INT32' } }, { pageSize: 1 << 30 }),
    new ColumnBuilder({ name: 'v', nullable: true, leaf: { physical: 'BYTE_ARRAY' } }, { pageSize: 1 << 30 }),
  ];
  const decoder = new BinaryCopyDecoder(
    [
      { decode: () => {}, kind: DecodeKind.INT4, scale: 0 },
      { decode: () => {}, kind: DecodeKind.BYTES, scale: 0 },
    ],
    () => cols,
    { table: 'bench', columns: ['id', 'v'] },
  );
  const t0 = performance.now();
  for (const chunk of copyChunks(mib * MiB)) {
    decoder.feed(chunk);
    decoder.run(
      () => {},
      () => false,
    );
  }
  decoder.end();
  const seconds = (performance.now() - t0) / 1000;
  if (decoder.rows !== 1 || cols[1]!.values.pos !== mib * MiB + 4) throw new Error('decoded the wrong value');
  return { mib, seconds, copied_bytes: decoder.copiedBytes ?? -1, s_per_mib: seconds / mib };
}

async function e2e(): Promise<{ mib: number; seconds: number; s_per_mib: number }[]> {
  if (e2eSizes.length === 0) return [];
  const h = await startHarness();
  const out: { mib: number; seconds: number; s_per_mib: number }[] = [];
  try {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    await h.pool.query('create schema huge; create table huge.blob (id int primary key, v text)');
    const c = await setupCustomer(h.stack, h.registry, {
      accountId: 'huge',
      awsAccountId: '310000000001',
      bucket: 'huge-data',
      schema: 'huge',
    });
    const settings = h.settings({ DROPSHIP_LOG_LEVEL: 'silent' });
    const reporter = new LogReporter(createLogger({ level: 'silent' }));
    for (const mib of e2eSizes) {
      await h.pool.query('truncate huge.blob');
      // Text that gzip has work to do on (not one repeated byte): 32 hex digits per md5, repeated.
      await h.pool.query(
        `insert into huge.blob select 1, string_agg(md5(i::text), '') from generate_series(1, $1::int) i`,
        [(mib * MiB) / 32],
      );
      const t0 = performance.now();
      const outcome = await exportAccount(c.destination, {
        sourceUrl: h.stack.databaseUrl,
        settings,
        reporter,
        ledger: h.ledger,
      });
      const seconds = (performance.now() - t0) / 1000;
      if (!outcome.ok) throw new Error(`export of ${mib} MiB failed: ${JSON.stringify(outcome)}`);
      out.push({ mib, seconds, s_per_mib: seconds / mib });
      log(`  end to end ${mib} MiB: ${seconds.toFixed(1)} s`);
    }
  } finally {
    await h.stop();
  }
  return out;
}

const decoder = decoderSizes.map((m) => {
  const r = decoderRun(m);
  log(`  decoder ${m} MiB: ${r.seconds.toFixed(2)} s, ${formatBytes(r.copied_bytes)} copied`);
  return r;
});
const endToEnd = await e2e();
log(
  renderTable(
    ['what', 'MiB', 'seconds', 's/MiB', 'copied'],
    [
      ...decoder.map((r) => [
        `decoder (${chunkSize} B chunks)`,
        String(r.mib),
        r.seconds.toFixed(2),
        r.s_per_mib.toFixed(4),
        formatBytes(r.copied_bytes),
      ]),
      ...endToEnd.map((r) => ['export end to end', String(r.mib), r.seconds.toFixed(1), r.s_per_mib.toFixed(3), '']),
    ],
  ),
);
process.stdout.write(
  `${JSON.stringify({ bench: 'huge-value', node: process.version, chunk: chunkSize, decoder, end_to_end: endToEnd })}\n`,
);
