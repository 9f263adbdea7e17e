import { createHash } from 'node:crypto';

/**
 * The name a table gets in object keys: the table name itself when it is made of
 * [A-Za-z0-9_.-] only; otherwise the safe characters plus a short hash of the exact name, so the
 * mapping is deterministic. The receipt keeps the exact table name as its key.
 *
 * Two tables can still map to one name — `"foo bar"` and a table literally named `foo_bar-<its hash>`,
 * or two unsafe names whose 32-bit hashes meet — and would then write each other's keys: the selection
 * (`selectTables`, `sharedObjectNames`) refuses the run, naming them, until one is renamed or excluded.
 */
export function tableObjectName(table: string): string {
  if (/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(table)) return table;
  const safe =
    table
      .replace(/[^A-Za-z0-9_.-]+/g, '_')
      .replace(/^[.-]+/, '')
      .slice(0, 48) || 'table';
  const hash = createHash('sha256').update(table, 'utf8').digest('hex').slice(0, 8);
  return `${safe}-${hash}`;
}

/**
 * Tables of one selection whose object names meet: each such table but the one that keeps the name (the
 * table whose own name it is, else the first in name order), with the table that keeps it.
 */
export function sharedObjectNames(tables: readonly string[]): { table: string; keeps: string; name: string }[] {
  const byName = new Map<string, string[]>();
  for (const t of tables) {
    const name = tableObjectName(t);
    byName.set(name, [...(byName.get(name) ?? []), t]);
  }
  const out: { table: string; keeps: string; name: string }[] = [];
  for (const [name, group] of byName) {
    if (group.length < 2) continue;
    const sorted = [...group].sort();
    const keeps = group.includes(name) ? name : sorted[0]!;
    for (const t of sorted) if (t !== keeps) out.push({ table: t, keeps, name });
  }
  return out;
}
