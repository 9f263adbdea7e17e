import type { Command } from 'commander';
import { printable } from '../format.js';
import { examples, out, UsageError } from '../usage.js';

/**
 * The customer's side: `dropship load` (a receipt's tables into Postgres or DuckDB) and
 * `dropship inspect` (what a delivery holds). Neither touches the registry.
 */
export function registerCustomerCommands(program: Command): void {
  program
    .command('load')
    .description(
      'Load every table a receipt lists into Postgres or DuckDB (the customer side; uses your AWS credentials)',
    )
    .requiredOption('--receipt <s3 uri>', 's3://bucket/prefix/receipt.json')
    .requiredOption('--into <database>', 'postgres://user:pass@host/db or duckdb:/path/file.duckdb')
    .option(
      '--changes',
      'apply change sets to tables loaded from the delivery they are relative to (else load the snapshot)',
    )
    .option(
      '--allow-older',
      'load even where the target holds a later delivery of a table (refused by default: it would put older rows back)',
    )
    .addHelpText(
      'after',
      examples(
        'dropship load --receipt s3://acme-data/dropship/receipt.json --into postgres://me@localhost/analytics',
        'dropship load --receipt s3://acme-data/receipt.json --into duckdb:./acme.duckdb',
        'dropship load --receipt s3://acme-data/receipt.json --into duckdb:./acme.duckdb --changes',
      ),
    )
    .action(async (o: { receipt: string; into: string; changes?: boolean; allowOlder?: boolean }) => {
      const { loadReceipt } = await import('../../customer/loader.js');
      const { readerS3For } = await import('../../customer/inspect.js');
      if (!/^(postgres(ql)?:\/\/|duckdb:)/.test(o.into))
        throw new UsageError('--into takes postgres://… or duckdb:/path');
      const where = /^s3:\/\/([^/]+)\/(.+)$/.exec(o.receipt);
      if (!where) throw new UsageError(`--receipt takes s3://bucket/…/receipt.json, not ${o.receipt}`);
      // The customer's side: their credentials, S3 in whatever region the bucket answers from.
      const { loadSettings } = await import('../../config/settings.js');
      const s3 = await readerS3For(where[1]!, where[2]!, loadSettings());
      try {
        const loaded = await loadReceipt({
          s3,
          receiptUri: o.receipt,
          into: o.into,
          ...(o.changes ? { changes: true } : {}),
          ...(o.allowOlder ? { allowOlder: true } : {}),
        });
        for (const t of loaded)
          out(
            `${printable(t.table).padEnd(32)} ${t.rows.toLocaleString('en-US').padStart(14)} rows${o.changes ? `  (${t.via === 'changes' ? 'change set applied' : 'snapshot loaded'})` : ''}`,
          );
      } finally {
        s3.destroy();
      }
    });

  program
    .command('inspect <receipt>')
    .description(
      'Show what a delivery holds: the receipt’s tables (rows, files, bytes, columns with Postgres and Parquet types) and, with --sample, the first rows read with DuckDB',
    )
    .option('--sample <n>', 'also print the first n rows of each table (or of --table)')
    .option('--table <name>', 'only this table')
    .addHelpText(
      'after',
      examples(
        'dropship inspect s3://acme-data/dropship/receipt.json',
        'dropship inspect s3://acme-data/dropship/receipt.json --table events --sample 5',
        'dropship inspect .dropship/demo/out/acme-data-platform/dreamdata --sample 3',
      ) +
        '\nS3 is read with the AWS credentials in the environment (the customer’s read-only keys), AWS_ENDPOINT_URL_S3 and DROPSHIP_S3_FORCE_PATH_STYLE as for every command.\n',
    )
    .action(async (target: string, o: { sample?: string; table?: string }) => {
      const sample = o.sample === undefined ? undefined : Number(o.sample);
      if (sample !== undefined && !(Number.isInteger(sample) && sample > 0 && sample <= 10_000))
        throw new UsageError('--sample takes a whole number of rows from 1 to 10000');
      const { loadSettings } = await import('../../config/settings.js');
      const settings = loadSettings();
      const [{ runInspect }, { readerS3 }] = await Promise.all([
        import('../inspect.js'),
        import('../../customer/inspect.js'),
      ]);
      await runInspect(
        target,
        { ...(sample ? { sample } : {}), ...(o.table ? { table: o.table } : {}) },
        out,
        (region) => readerS3(region, settings),
      );
    });
}
