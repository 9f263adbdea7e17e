import type { S3Client } from '@aws-sdk/client-s3';
import { openDelivery, sampleRows } from '../customer/inspect.js';
import { formatBytes, formatCount, renderTable } from './format.js';

/** `dropship inspect`: the receipt's tables with their columns, and optionally the first rows. */
export async function runInspect(
  target: string,
  opts: { sample?: number; table?: string },
  out: (s: string) => void,
  s3Factory?: (region?: string) => S3Client,
): Promise<void> {
  const delivery = await openDelivery(target, s3Factory);
  try {
    const r = delivery.receipt;
    const tables = Object.entries(r.tables).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const files = tables.reduce((n, [, t]) => n + t.total_file_count, 0);
    const bytes = tables.reduce((n, [, t]) => n + (t.bytes ?? 0), 0);
    const rows = tables.reduce((n, [, t]) => n + (t.row_count ?? 0), 0);
    out(`receipt  ${delivery.location}`);
    out(`run      ${r.run_id} at ${r.timestamp} · layout ${r.layout ?? 'dreamdata'} · ${r.format}/${r.compression}`);
    out(`${tables.length} tables · ${formatCount(rows)} rows · ${formatBytes(bytes)} in ${files} files\n`);
    out(
      renderTable(
        ['table', 'rows', 'files', 'bytes', 'folder'],
        tables.map(([name, t]) => [
          name,
          formatCount(t.row_count),
          String(t.total_file_count),
          formatBytes(t.bytes),
          t.folder,
        ]),
        [1, 2, 3],
      ),
    );
    const withChanges = tables.filter(([, t]) => t.changes);
    if (withChanges.length > 0) {
      out('\nchange sets (docs/customer/change-sets.md)');
      out(
        renderTable(
          ['table', 'since run', 'inserted', 'updated', 'deleted', 'files', 'note'],
          withChanges.map(([name, t]) => {
            const c = t.changes!;
            if (!c.available) return [name, '—', '', '', '', '', c.reason];
            return [
              name,
              c.since_run_id ?? '—',
              formatCount(c.inserted),
              formatCount(c.updated),
              formatCount(c.deleted),
              String(c.files.length),
              c.full_refresh ? `full refresh (${c.full_refresh_reason ?? ''}): load the snapshot` : '',
            ];
          }),
          [2, 3, 4, 5],
        ),
      );
    }
    for (const [name, t] of tables) {
      if (opts.table && name !== opts.table) continue;
      out(`\n${name} (${formatCount(t.row_count)} rows)`);
      out(
        renderTable(
          ['column', 'postgres type', 'parquet type', 'null', 'note'],
          (t.columns ?? []).map((c) => [
            c.name,
            c.postgres_type,
            c.parquet_type,
            c.nullable ? 'yes' : 'no',
            c.text_form ? 'text form' : '',
          ]),
        ),
      );
      if (opts.sample !== undefined && opts.sample > 0) {
        const s = await sampleRows(delivery, name, opts.sample);
        out(`\nfirst ${s.rows.length} row${s.rows.length === 1 ? '' : 's'} of ${name} (read with DuckDB):`);
        const cell = (v: string | null): string => {
          if (v === null) return 'NULL';
          const one = v.replace(/\s+/g, ' ');
          return one.length > 40 ? `${one.slice(0, 39)}…` : one;
        };
        out(
          renderTable(
            s.columns,
            s.rows.map((row) => row.map(cell)),
          ),
        );
      }
    }
    if (opts.table && !r.tables[opts.table])
      throw new (await import('../customer/inspect.js')).InspectError(
        `the receipt has no table ${opts.table} (it has: ${tables.map(([n]) => n).join(', ')})`,
      );
  } finally {
    delivery.close();
  }
}
