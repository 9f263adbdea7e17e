import { z } from 'zod';

/**
 * What a destination receives from its source schema (stored in the registry with the destination):
 *   - tenant mode: only the rows whose `tenantColumn` equals `tenantValue` (compared in the column's
 *     own type), from every selected table that has the column; a table without it is left out unless
 *     one of `globalTables` names it (reference data, exported whole). `dropTenantColumn` leaves the
 *     column out of the files.
 *   - table selection: `includeTables` (empty = every table) minus `excludeTables`;
 *   - column selection: `excludeColumns` as `table.column` pairs.
 * Every list but `globalTables` (exact names) holds globs (`*` any run of characters, `?` one character), matched
 * against exact, case-sensitive Postgres names. In `table.column` the first "." separates the two globs.
 */
export interface Selection {
  tenantColumn?: string;
  tenantValue?: string;
  dropTenantColumn: boolean;
  globalTables: string[];
  includeTables: string[];
  excludeTables: string[];
  excludeColumns: string[];
}

export const EMPTY_SELECTION: Selection = {
  dropTenantColumn: false,
  globalTables: [],
  includeTables: [],
  excludeTables: [],
  excludeColumns: [],
};

/**
 * A Postgres name (schema, column): at most 63 bytes of UTF-8, as Postgres keeps them. A longer one is not refused by
 * Postgres but cut to 63 bytes — in a `name` parameter and in a quoted identifier alike — so it would read another
 * name's data while dropship's own checks (ownership of a schema, one tenant per account) compared the full text
 * (red team, API: `<another account's 60-byte schema>😀` passed as a schema of its own and exported its rows).
 */
export const postgresIdentifier = z
  .string()
  .min(1, 'cannot be empty')
  .refine((s) => Buffer.byteLength(s, 'utf8') <= 63, 'Postgres names are at most 63 bytes (UTF-8)')
  .refine((s) => !s.includes('\u0000'), 'cannot contain a NUL character');
const identifier = postgresIdentifier;

const glob = z
  .string()
  .min(1, 'an empty pattern matches nothing')
  .max(200, 'patterns are at most 200 characters')
  .refine((s) => !s.includes('\u0000'), 'cannot contain a NUL character');

/**
 * A global table is named exactly: a pattern would send whole, unasked, a table added later or one whose tenant
 * column was renamed or dropped — another tenant's rows (red-team, tenants: `ref_*` took `ref_fees` whole after its
 * `org` column was renamed). Stored patterns of earlier releases still match (docs/operations/upgrades.md).
 */
const tableName = glob.refine(
  (s) => !/[*?]/.test(s),
  'global tables are named exactly, without * or ?: a pattern would send whole a table nobody named (a new one, or one whose tenant column was renamed or dropped)',
);

const columnGlob = glob.refine(
  (s) => s.indexOf('.') > 0 && s.indexOf('.') < s.length - 1,
  'exclude-columns entries are "table.column" (globs allowed on both sides, e.g. "*.email")',
);

/**
 * Patterns per list. Every pattern is matched against every table (and a column pattern's column part against the
 * columns of the tables its table part matches), at registration, in the doctor and at every run, on the event loop: the
 * number of patterns bounds that work (with 200-character patterns and 63-byte names, each match is at most
 * ~12,800 steps; see globMatch). 2,000 adversarial patterns over 100 tables of 40 columns took 54 s before this bound;
 * at the bound, 100 distinct adversarial patterns against adversarial 63-character names (100 tables × 40 columns) take
 * 71 ms as table patterns and 3.5 s as column patterns, the worst case (.scratch measurement, 2026-12-05; a schema's
 * real names and patterns take microseconds).
 */
export const MAX_PATTERNS = 100;

/** A list given as an array or as one comma-separated string (the CLI form); blanks and repeats dropped. */
const list = (item: typeof glob) =>
  z
    .union([z.string(), z.array(z.string())])
    .transform((v) => [
      ...new Set((typeof v === 'string' ? v.split(',') : v).map((s) => s.trim()).filter((s) => s.length > 0)),
    ])
    .pipe(
      z.array(item).max(MAX_PATTERNS, `at most ${MAX_PATTERNS} patterns (globs: one pattern can name many tables)`),
    );

export const selectionSchema = z
  .object({
    tenantColumn: identifier.optional(),
    tenantValue: z
      .string()
      .min(1, 'cannot be empty')
      .max(1000, 'tenant values are at most 1,000 characters')
      .refine((s) => !s.includes('\u0000'), 'cannot contain a NUL character')
      .optional(),
    dropTenantColumn: z.boolean().default(false),
    globalTables: list(tableName).default([]),
    includeTables: list(glob).default([]),
    excludeTables: list(glob).default([]),
    excludeColumns: list(columnGlob).default([]),
  })
  .strict()
  .superRefine((s, ctx) => {
    if ((s.tenantColumn === undefined) !== (s.tenantValue === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [s.tenantColumn === undefined ? 'tenantColumn' : 'tenantValue'],
        message: 'tenant mode needs both --tenant-column and --tenant-value',
      });
    }
    if (s.tenantColumn === undefined && s.globalTables.length > 0)
      ctx.addIssue({
        code: 'custom',
        path: ['globalTables'],
        message: '--global-tables only applies in tenant mode (--tenant-column)',
      });
    if (s.tenantColumn === undefined && s.dropTenantColumn)
      ctx.addIssue({
        code: 'custom',
        path: ['dropTenantColumn'],
        message: '--drop-tenant-column only applies in tenant mode (--tenant-column)',
      });
  });

export type SelectionInput = z.input<typeof selectionSchema>;

export function isTenantMode(s: Selection): s is Selection & { tenantColumn: string; tenantValue: string } {
  return s.tenantColumn !== undefined && s.tenantValue !== undefined;
}

/** True when the destination exports its whole schema as it is (no tenant filter, no selection). */
export function isWholeSchema(s: Selection): boolean {
  return (
    !isTenantMode(s) && s.includeTables.length === 0 && s.excludeTables.length === 0 && s.excludeColumns.length === 0
  );
}

/**
 * Glob matching: `*` any run of characters, `?` one character (a code point), everything else
 * literal, case-sensitive, against the whole name. Hand-written on purpose: picomatch/minimatch
 * give `/` and leading dots path meaning, which Postgres names do not have, and a glob turned into
 * a RegExp backtracks exponentially (`*a*a*a*a*a*a*ab` took seconds on a 60-character name).
 *
 * The classic two-pointer matcher: on a mismatch it returns only to the LAST star seen, one
 * character further into the name. A star matched earlier never needs revisiting (whatever an
 * earlier star could absorb, the last one can too), so the work is at most
 * (pattern length + 1) × (name length + 1) steps — linear in the name, with patterns at most 200
 * characters (the selection schema). `steps`, when given, counts loop iterations (for tests).
 */
export function globMatch(pattern: string, name: string, steps?: { count: number }): boolean {
  // By code point; strings without surrogates (every ASCII name) are compared as they are, without a copy.
  const p = SURROGATE.test(pattern) ? Array.from(pattern) : pattern;
  const n = SURROGATE.test(name) ? Array.from(name) : name;
  let pi = 0;
  let ni = 0;
  let star = -1; // index in p of the last star seen
  let resume = 0; // where in n that star's run ends so far
  let count = 0;
  while (ni < n.length) {
    count++;
    if (pi < p.length && p[pi] === '*') {
      star = pi++;
      resume = ni;
    } else if (pi < p.length && (p[pi] === '?' || p[pi] === n[ni])) {
      pi++;
      ni++;
    } else if (star >= 0) {
      pi = star + 1;
      ni = ++resume;
    } else {
      if (steps) steps.count += count;
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  if (steps) steps.count += count;
  return pi === p.length;
}

const SURROGATE = /[\uD800-\uDFFF]/;

export function matchesAny(name: string, patterns: string[]): string | undefined {
  return patterns.find((p) => globMatch(p, name));
}

/** Splits a `table.column` pattern at its first dot. */
export function splitColumnPattern(p: string): { table: string; column: string } {
  const i = p.indexOf('.');
  return { table: p.slice(0, i), column: p.slice(i + 1) };
}

/** One line per setting, for `destinations show`. */
export function describeSelection(s: Selection): string[] {
  const lines: string[] = [];
  if (isTenantMode(s)) {
    lines.push(
      `tenant        ${s.tenantColumn} = ${JSON.stringify(s.tenantValue)}${s.dropTenantColumn ? '  (column left out of the files)' : ''}`,
    );
    lines.push(`global tables ${s.globalTables.length ? s.globalTables.join(', ') : '—'}`);
  }
  if (s.includeTables.length) lines.push(`include       ${s.includeTables.join(', ')}`);
  if (s.excludeTables.length) lines.push(`exclude       ${s.excludeTables.join(', ')}`);
  if (s.excludeColumns.length) lines.push(`exclude cols  ${s.excludeColumns.join(', ')}`);
  if (lines.length === 0) lines.push('selection     every table and column of the schema');
  return lines;
}
