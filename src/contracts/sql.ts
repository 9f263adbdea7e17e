/**
 * SQL identifier quoting, the one place it is written. Every dialect dropship generates SQL for
 * (PostgreSQL, DuckDB, Redshift, Snowflake) quotes with double quotes, except Athena's Hive DDL,
 * which quotes with backticks; the quote character inside a name is doubled.
 */
export type QuoteDialect = 'postgres' | 'duckdb' | 'redshift' | 'snowflake' | 'athena';

export function quoteIdent(name: string, dialect: QuoteDialect = 'postgres'): string {
  return dialect === 'athena' ? `\`${name.replaceAll('`', '``')}\`` : `"${name.replaceAll('"', '""')}"`;
}
