import { describe, expect, it } from 'vitest';
import { quoteIdent } from './sql.js';

describe('quoteIdent', () => {
  it('double-quotes by default and doubles embedded double quotes', () => {
    expect(quoteIdent('events')).toBe('"events"');
    expect(quoteIdent('Mixed Case')).toBe('"Mixed Case"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteIdent('"')).toBe('""""');
    expect(quoteIdent('a`b')).toBe('"a`b"');
  });

  it('double-quotes for postgres, duckdb, redshift and snowflake', () => {
    for (const d of ['postgres', 'duckdb', 'redshift', 'snowflake'] as const)
      expect(quoteIdent('a"b', d)).toBe('"a""b"');
  });

  it('backticks for athena and doubles embedded backticks', () => {
    expect(quoteIdent('events', 'athena')).toBe('`events`');
    expect(quoteIdent('a`b', 'athena')).toBe('`a``b`');
    expect(quoteIdent('a"b', 'athena')).toBe('`a"b`');
  });
});
