import { describe, expect, it } from 'vitest';
import { quoteIdent, quoteLiteral } from './sql.js';

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

describe('quoteLiteral', () => {
  it('single-quotes by default and doubles embedded single quotes, backslashes left alone', () => {
    expect(quoteLiteral('events')).toBe("'events'");
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(quoteLiteral("'")).toBe("''''");
    expect(quoteLiteral('a\\b')).toBe("'a\\b'");
    expect(quoteLiteral("a\\'b")).toBe("'a\\''b'");
    expect(quoteLiteral('')).toBe("''");
  });

  it('postgres and duckdb take the backslash literally', () => {
    for (const d of ['postgres', 'duckdb'] as const) expect(quoteLiteral("a'b\\c", d)).toBe("'a''b\\c'");
  });

  it('redshift and snowflake double the backslash too (it is their escape character)', () => {
    for (const d of ['redshift', 'snowflake'] as const) {
      expect(quoteLiteral("a'b\\c", d)).toBe("'a''b\\\\c'");
      expect(quoteLiteral('s3://bucket/prefix/', d)).toBe("'s3://bucket/prefix/'");
    }
  });

  it("athena's Hive DDL escapes the quote and the backslash with a backslash", () => {
    expect(quoteLiteral("a'b\\c", 'athena')).toBe("'a\\'b\\\\c'");
    expect(quoteLiteral('s3://bucket/prefix/', 'athena')).toBe("'s3://bucket/prefix/'");
  });
});
