import { OP_COLUMN, type Receipt } from '../contracts/receipt.js';
import { commentText, quoteIdent, quoteLiteral } from '../contracts/sql.js';
import {
  columnType,
  fileStem,
  type Manifest,
  manifestFolder,
  redshiftManifest,
  type SqlTarget,
  snowflakeFilesClauses,
  snowflakeLocation,
} from './warehouse-sql.js';

/**
 * `dropship receipt sql --changes`: statements that apply each table's change set to a warehouse
 * copy of the delivery it is relative to (`since_run_id`). Tables on a full refresh, or without a
 * change set, get a comment saying to reload them from the snapshot (the plain `receipt sql`).
 *
 *   Snowflake: COPY INTO a temporary table with FILES = exactly the receipt's change files, DELETE the
 *              deleted keys, then MERGE the rest (WHEN MATCHED THEN UPDATE / WHEN NOT MATCHED THEN
 *              INSERT). Not one MERGE with a delete branch: a key whose form changed but that is equal
 *              under `=` (0 → -0, 1.0 → 1.00) comes as a delete and an insert, and one target row
 *              matched by two source rows is an error in Snowflake (nondeterministic MERGE).
 *   Redshift:  its MERGE takes a table as source and one WHEN MATCHED action, so: COPY the change
 *              files (a MANIFEST of exactly them: `changeManifests`) into a temporary table, DELETE
 *              the deleted keys, then MERGE the rest.
 * Never the change folder as a prefix: a change file the receipt does not list is never applied.
 */
export type MergeDialect = 'redshift' | 'snowflake';

/** Tables whose change set is applied (available, not a full refresh, with files). */
function appliedChanges(receipt: Receipt) {
  return Object.entries(receipt.tables).flatMap(([name, t]) => {
    const c = t.changes;
    return c?.available && !c.full_refresh && c.files.length > 0 ? [{ name, t, c }] : [];
  });
}

/** Redshift: one COPY manifest per applied change set, listing exactly its change files. */
export function changeManifests(receipt: Receipt, target: SqlTarget): Manifest[] {
  return appliedChanges(receipt).map(({ name, c }) => ({
    table: name,
    name: `${fileStem(receipt, name)}-changes.manifest`,
    body: redshiftManifest(c.files, target),
  }));
}

export function changesSql(receipt: Receipt, d: MergeDialect, target: SqlTarget): string {
  const out: string[] = [
    `-- dropship run ${commentText(`${receipt.run_id} (${receipt.timestamp})`)}, change sets, ${d}`,
  ];
  const manifests = new Map(changeManifests(receipt, target).map((m) => [m.table, m]));
  if (d === 'redshift' && manifests.size > 0)
    out.push(
      `-- Loads exactly the change files this receipt lists, through one manifest per table: upload the manifests\n-- (dropship receipt sql … --changes --manifest-dir <dir>) to ${manifestFolder(target)}/ first.`,
    );
  for (const [name, t] of Object.entries(receipt.tables)) {
    const c = t.changes;
    // Every name and free text of the receipt goes into a comment escaped: a newline there would end the comment.
    const said = commentText(name);
    if (!c) {
      out.push(
        `-- ${said}: no change set in this receipt (destination without --changes): reload it from the snapshot`,
      );
      continue;
    }
    if (!c.available) {
      out.push(`-- ${said}: no change set (${commentText(c.reason)}): reload it from the snapshot`);
      continue;
    }
    if (c.full_refresh) {
      out.push(
        `-- ${said}: full refresh (${commentText(c.full_refresh_reason ?? 'full refresh')}): reload it from the snapshot`,
      );
      continue;
    }
    const header = `-- ${said}: ${c.inserted} inserted, ${c.updated} updated, ${c.deleted} deleted since run ${commentText(String(c.since_run_id))}; apply only to a copy loaded from that run`;
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
      const stage = quoteIdent(`${name}_dropship_changes`);
      const defs = [
        ...t.columns.map((col) => `  ${quoteIdent(col.name)} ${columnType(col, d)}`),
        `  ${quoteIdent(OP_COLUMN)} VARCHAR`,
      ];
      const copies = snowflakeFilesClauses(target.prefix, c.folder, c.files).map(
        (files) =>
          `COPY INTO ${stage} FROM ${snowflakeLocation(target, c.folder)}\n  ${files}\n  FILE_FORMAT = (TYPE = PARQUET)\n  MATCH_BY_COLUMN_NAME = CASE_SENSITIVE;`,
      );
      out.push(
        `${header}
CREATE TEMPORARY TABLE ${stage} (\n${defs.join(',\n')}\n);
${copies.join('\n')}
DELETE FROM ${quoteIdent(name)} t USING ${stage} s WHERE ${on} AND s.${quoteIdent(OP_COLUMN)} = 'delete';
DELETE FROM ${stage} WHERE ${quoteIdent(OP_COLUMN)} = 'delete';
MERGE INTO ${quoteIdent(name)} t
USING ${stage} s
ON ${on}
${set ? `WHEN MATCHED THEN UPDATE SET ${set}\n` : ''}WHEN NOT MATCHED THEN INSERT (${insertCols}) VALUES (${insertVals});
DROP TABLE ${stage};`,
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
COPY ${stage} FROM ${quoteLiteral(`${manifestFolder(target)}/${manifests.get(name)!.name}`, d)}
  IAM_ROLE ${quoteLiteral(target.redshiftIamRole ?? '<redshift-role-arn>', d)}
  FORMAT AS PARQUET SERIALIZETOJSON
  MANIFEST;
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
