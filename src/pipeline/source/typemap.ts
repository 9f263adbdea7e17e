import { quoteIdent } from '../../contracts/sql.js';
import type { ColumnSpec } from '../parquet/schema.js';
import type { DecodeKind, Decoder, PgTypeInfo } from './types/entry.js';
import { columnCodec } from './types/registry.js';

export { DecodeKind, type Decoder, type PgTypeInfo } from './types/entry.js';

/**
 * A column's export plan, from the type registry (./types/registry.ts): the expression that selects
 * it in the binary COPY (`"col"`, or its text form), its Parquet column spec, and the decoder from
 * Postgres' binary send format straight into the column builder. The full table with the reasons
 * lives in docs/type-mapping.md.
 */
export interface PgColumn {
  name: string;
  notNull: boolean;
  typeOid: number;
  typmod: number;
  /** format_type() of the column, e.g. `numeric(18,4)`. */
  pgType: string;
}

export interface ColumnPlan {
  name: string;
  pgType: string;
  spec: ColumnSpec;
  select: string;
  decode: Decoder;
  /** True when the value is exported as its Postgres text form. */
  textForm: boolean;
  /** How the COPY decoder decodes a present value (CLOSURE → `decode`). */
  kind: DecodeKind;
  /** DECIMAL scale (DecodeKind.DECIMAL64). */
  scale: number;
}

/** Plans one column: its type is looked up in the registry here, once, not per value. */
export function planColumn(col: PgColumn, types: ReadonlyMap<number, PgTypeInfo>): ColumnPlan {
  const { codec, list } = columnCodec(col.name, col.typeOid, col.typmod, types);
  return {
    name: col.name,
    pgType: col.pgType,
    spec: list
      ? { name: col.name, nullable: !col.notNull, leaf: codec.leaf, list: true }
      : { name: col.name, nullable: !col.notNull, leaf: codec.leaf },
    select: codec.select(quoteIdent(col.name), list),
    decode: codec.decode,
    textForm: codec.textForm,
    kind: codec.kind,
    scale: codec.scale,
  };
}
