/**
 * SQL quoting, the one place it is written: identifiers (quoteIdent) and string literals
 * (quoteLiteral), for every dialect dropship generates SQL for.
 */
export type QuoteDialect = 'postgres' | 'duckdb' | 'redshift' | 'snowflake' | 'athena';

/**
 * An identifier. PostgreSQL, DuckDB, Redshift and Snowflake quote with double quotes, Athena's Hive
 * DDL with backticks; the quote character inside a name is doubled.
 */
export function quoteIdent(name: string, dialect: QuoteDialect = 'postgres'): string {
  return dialect === 'athena' ? `\`${name.replaceAll('`', '``')}\`` : `"${name.replaceAll('"', '""')}"`;
}

/**
 * Text for a `-- …` comment: every character that could end the comment's line — C0 and C1 controls, U+2028 and
 * U+2029 — written as a `\uXXXX` escape. A table named `x\nDROP TABLE customers; --` (a legal Postgres name) made
 * the line after a comment a live statement (red-team, customer tools).
 */
export function commentText(text: string): string {
  return text.replace(
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * A string literal, single-quoted. The dialects differ on the backslash:
 *   PostgreSQL (standard_conforming_strings, the default since 9.1) and DuckDB take it literally,
 *     so only the single quote is doubled.
 *   Redshift and Snowflake treat it as an escape character in single-quoted strings, so the
 *     backslash is doubled as well as the single quote.
 *   Athena's Hive DDL (LOCATION '…') uses C-style escapes and reads adjacent literals as one
 *     ('a''b' is "ab"), so both the backslash and the single quote are escaped with a backslash.
 */
export function quoteLiteral(value: string, dialect: QuoteDialect = 'postgres'): string {
  switch (dialect) {
    case 'postgres':
    case 'duckdb':
      return `'${value.replaceAll("'", "''")}'`;
    case 'redshift':
    case 'snowflake':
      return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
    case 'athena':
      return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  }
}
