import { OP_COLUMN, type Receipt } from '../contracts/receipt.js';
import { quoteIdent, quoteLiteral } from '../contracts/sql.js';
import { columnType, type SqlTarget } from './warehouse-sql.js';

/**
 * `dropship receipt sql --changes`: statements that apply each table's change set to a warehouse
 * copy of the delivery it is relative to (`since_run_id`). Tables on a full refresh, or without a
 * change set, get a comment saying to reload them from the snapshot (the plain `receipt sql`).
 *
 *   Snowflake: one MERGE reading the change files straight from the stage
 *              (WHEN MATCHED AND _op = 'delete' THEN DELETE / WHEN MATCHED THEN UPDATE /
 *               WHEN NOT MATCHED AND _op <> 'delete' THEN INSERT).
 *   Redshift:  its MERGE takes a table as source and one WHEN MATCHED action, so: COPY the change
 *              files into a temporary table, DELETE the deleted keys, then MERGE the rest.
 */
export type MergeDialect = 'redshift' | 'snowflake';

export function changesSql(receipt: Receipt, d: MergeDialect, target: SqlTarget): string {
  const base = `s3://${target.bucket}/${target.prefix ? `${target.prefix}/` : ''}`;
  const out: string[] = [`-- dropship run ${receipt.run_id} (${receipt.timestamp}), change sets, ${d}`];
  if (d === 'snowflake') out.push('CREATE FILE FORMAT IF NOT EXISTS dropship_parquet TYPE = PARQUET;');
  for (const [name, t] of Object.entries(receipt.tables)) {
    const c = t.changes;
    if (!c) {
      out.push(
        `-- ${name}: no change set in this receipt (destination without --changes): reload it from the snapshot`,
      );
      continue;
    }
    if (!c.available) {
      out.push(`-- ${name}: no change set (${c.reason}): reload it from the snapshot`);
      continue;
    }
    if (c.full_refresh) {
      out.push(`-- ${name}: full refresh (${c.full_refresh_reason ?? 'full refresh'}): reload it from the snapshot`);
      continue;
    }
    const header = `-- ${name}: ${c.inserted} inserted, ${c.updated} updated, ${c.deleted} deleted since run ${c.since_run_id}; apply only to a copy loaded from that run`;
    if (c.files.length === 0) {
      out.push(`${header}\n-- (nothing changed)`);
      continue;
    }
    const cols = t.columns.map((col) => col.name);
    const onWith = (tgt: string): string =>
      c.key_columns.map((k) => `${tgt}.${quoteIdent(k)} = s.${quoteIdent(k)}`).join(' AND ');
    const on = onWith('t');
    const set = cols
      .filter((n) => !c.key_columns.includes(n))
      .map((n) => `${quoteIdent(n)} = s.${quoteIdent(n)}`)
      .join(', ');
    const insertCols = cols.map((c) => quoteIdent(c)).join(', ');
    const insertVals = cols.map((n) => `s.${quoteIdent(n)}`).join(', ');
    if (d === 'snowflake') {
      const select = [
        ...t.columns.map((col) => `$1:${quoteIdent(col.name)}::${columnType(col, d)} AS ${quoteIdent(col.name)}`),
        `$1:${quoteIdent(OP_COLUMN)}::VARCHAR AS ${quoteIdent(OP_COLUMN)}`,
      ].join(',\n         ');
      out.push(
        `${header}
MERGE INTO ${quoteIdent(name)} t
USING (
  SELECT ${select}
    FROM @${target.snowflakeStage ?? '<stage>'}/${c.folder}/ (FILE_FORMAT => 'dropship_parquet')
) s
ON ${on}
WHEN MATCHED AND s.${quoteIdent(OP_COLUMN)} = 'delete' THEN DELETE
${set ? `WHEN MATCHED THEN UPDATE SET ${set}\n` : ''}WHEN NOT MATCHED AND s.${quoteIdent(OP_COLUMN)} <> 'delete' THEN INSERT (${insertCols}) VALUES (${insertVals});`,
      );
    } else {
      const stage = quoteIdent(`${name}_dropship_changes`);
      const defs = [
        ...t.columns.map((col) => `  ${quoteIdent(col.name)} ${columnType(col, d)}`),
        `  ${quoteIdent(OP_COLUMN)} VARCHAR(6)`,
      ];
      out.push(
        `${header}
CREATE TEMP TABLE ${stage} (\n${defs.join(',\n')}\n);
COPY ${stage} FROM ${quoteLiteral(`${base}${c.folder}/`, d)}
  IAM_ROLE ${quoteLiteral(target.redshiftIamRole ?? '<redshift-role-arn>', d)}
  FORMAT AS PARQUET SERIALIZETOJSON;
DELETE FROM ${quoteIdent(name)} USING ${stage} s WHERE ${onWith(quoteIdent(name))} AND s.${quoteIdent(OP_COLUMN)} = 'delete';
DELETE FROM ${stage} WHERE ${quoteIdent(OP_COLUMN)} = 'delete';
MERGE INTO ${quoteIdent(name)} USING ${stage} s ON ${onWith(quoteIdent(name))}
WHEN MATCHED THEN UPDATE SET ${set || `${quoteIdent(c.key_columns[0]!)} = s.${quoteIdent(c.key_columns[0]!)}`}
WHEN NOT MATCHED THEN INSERT (${insertCols}) VALUES (${insertVals});
DROP TABLE ${stage};`,
      );
    }
  }
  return `${out.join('\n\n')}\n`;
}
