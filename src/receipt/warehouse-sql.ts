import type { ColumnInfo, Receipt } from '../contracts/receipt.js';
import { quoteIdent, quoteLiteral } from '../contracts/sql.js';

/**
 * Loading SQL for customers' warehouses, generated from a receipt's `columns` (the Parquet types
 * dropship wrote): Redshift COPY … FORMAT AS PARQUET, Snowflake COPY INTO, Athena/Glue DDL.
 * Each statement set creates the table if needed and loads (or points at) the run's folder.
 */
export type Dialect = 'redshift' | 'snowflake' | 'athena';

export interface SqlTarget {
  bucket: string;
  /** The destination prefix the receipt lives under ('' for the bucket root). */
  prefix: string;
  /** Redshift: the IAM role Redshift assumes to read the bucket. */
  redshiftIamRole?: string;
  /** Snowflake: the external stage pointing at s3://bucket/prefix/. */
  snowflakeStage?: string;
}

interface Parsed {
  list: boolean;
  physical: string;
  logical: string;
  precision?: number;
  scale?: number;
}

function parse(col: ColumnInfo): Parsed {
  const list = col.parquet_type.startsWith('LIST<');
  const t = list ? col.parquet_type.slice(5, -1) : col.parquet_type;
  const [physical = '', ...rest] = t.split(' ');
  const logical = rest.join(' ');
  const dec = /DECIMAL\((\d+),(\d+)\)/.exec(logical);
  return { list, physical, logical, ...(dec ? { precision: Number(dec[1]), scale: Number(dec[2]) } : {}) };
}

function scalarType(p: Parsed, d: Dialect): string {
  const L = p.logical;
  if (L.startsWith('DECIMAL'))
    return d === 'snowflake' ? `NUMBER(${p.precision},${p.scale})` : `DECIMAL(${p.precision},${p.scale})`;
  if (L.startsWith('TIMESTAMP')) {
    const utc = L.includes('UTC');
    return d === 'redshift'
      ? utc
        ? 'TIMESTAMPTZ'
        : 'TIMESTAMP'
      : d === 'snowflake'
        ? utc
          ? 'TIMESTAMP_TZ'
          : 'TIMESTAMP_NTZ'
        : 'timestamp';
  }
  if (L.startsWith('TIME')) return d === 'athena' ? 'string' : 'TIME';
  if (L === 'DATE') return d === 'athena' ? 'date' : 'DATE';
  if (L === 'JSON') return d === 'redshift' ? 'SUPER' : d === 'snowflake' ? 'VARIANT' : 'string';
  if (L === 'UUID') return d === 'redshift' ? 'VARBYTE(16)' : d === 'snowflake' ? 'BINARY(16)' : 'binary';
  if (L === 'STRING') return d === 'redshift' ? 'VARCHAR(65535)' : d === 'snowflake' ? 'VARCHAR' : 'string';
  if (L.startsWith('INTEGER(16')) return d === 'snowflake' ? 'NUMBER(5,0)' : 'smallint';
  switch (p.physical) {
    case 'INT32':
      return d === 'snowflake' ? 'NUMBER(10,0)' : d === 'athena' ? 'int' : 'INTEGER';
    case 'INT64':
      return d === 'snowflake' ? 'NUMBER(19,0)' : 'bigint';
    case 'FLOAT':
      return d === 'athena' ? 'float' : 'REAL';
    case 'DOUBLE':
      return d === 'athena' ? 'double' : d === 'snowflake' ? 'FLOAT' : 'DOUBLE PRECISION';
    case 'BOOLEAN':
      return d === 'athena' ? 'boolean' : 'BOOLEAN';
    default:
      return d === 'redshift' ? 'VARBYTE' : d === 'snowflake' ? 'BINARY' : 'binary';
  }
}

export function columnType(col: ColumnInfo, d: Dialect): string {
  const p = parse(col);
  if (!p.list) return scalarType(p, d);
  // Lists: Athena knows arrays; Redshift and Snowflake load nested data as semi-structured values.
  return d === 'athena' ? `array<${scalarType(p, d)}>` : d === 'redshift' ? 'SUPER' : 'ARRAY';
}

export function warehouseSql(receipt: Receipt, d: Dialect, target: SqlTarget): string {
  const base = `s3://${target.bucket}/${target.prefix ? `${target.prefix}/` : ''}`;
  const out: string[] = [`-- dropship run ${receipt.run_id} (${receipt.timestamp}), ${d}`];
  for (const [name, t] of Object.entries(receipt.tables)) {
    const cols = (t.columns ?? [])
      .map((c) => `  ${quoteIdent(c.name, d)} ${columnType(c, d)}${!c.nullable && d !== 'athena' ? ' NOT NULL' : ''}`)
      .join(',\n');
    const location = `${base}${t.folder}/`;
    if (d === 'redshift') {
      out.push(`CREATE TABLE IF NOT EXISTS ${quoteIdent(name, d)} (\n${cols}\n);`);
      out.push(`TRUNCATE ${quoteIdent(name, d)};`);
      out.push(
        `COPY ${quoteIdent(name, d)} FROM ${quoteLiteral(location, d)}\n  IAM_ROLE ${quoteLiteral(target.redshiftIamRole ?? '<redshift-role-arn>', d)}\n  FORMAT AS PARQUET SERIALIZETOJSON;`,
      );
    } else if (d === 'snowflake') {
      out.push(`CREATE TABLE IF NOT EXISTS ${quoteIdent(name, d)} (\n${cols}\n);`);
      out.push(`TRUNCATE TABLE ${quoteIdent(name, d)};`);
      out.push(
        `COPY INTO ${quoteIdent(name, d)} FROM @${target.snowflakeStage ?? '<stage>'}/${t.folder}/\n  FILE_FORMAT = (TYPE = PARQUET)\n  MATCH_BY_COLUMN_NAME = CASE_SENSITIVE;`,
      );
    } else {
      out.push(`DROP TABLE IF EXISTS ${quoteIdent(name, d)};`);
      out.push(
        `CREATE EXTERNAL TABLE ${quoteIdent(name, d)} (\n${cols}\n)\nSTORED AS PARQUET\nLOCATION ${quoteLiteral(location, d)};`,
      );
    }
  }
  return `${out.join('\n\n')}\n`;
}
