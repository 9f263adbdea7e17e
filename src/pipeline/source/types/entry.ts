import type { ColumnBuilder } from '../../parquet/column.js';
import type { LeafType } from '../../parquet/schema.js';

/**
 * The shape of one type registry entry (./registry.ts) and of what it builds for a column. Kept
 * apart from the registry so the type families (./numeric.ts, ./temporal.ts, ./text.ts, ./json.ts,
 * ./arrays.ts) can implement it while the registry imports them.
 */

/** A pg_type row, as src/pipeline/source/catalog.ts loads it. */
export interface PgTypeInfo {
  oid: number;
  typname: string;
  nspname: string;
  typtype: string;
  typcategory: string;
  typelem: number;
  typbasetype: number;
  typtypmod: number;
  /** The extension the type belongs to (`citext`), null for built-in and user-defined types. */
  extname: string | null;
}

/**
 * A pg_type row with the defaults of a pg_catalog base type (`more` for arrays, domains, enums,
 * other namespaces): for column plans made without a catalog query, and for tests.
 */
export function pgTypeInfo(oid: number, typname: string, more: Partial<PgTypeInfo> = {}): PgTypeInfo {
  return {
    oid,
    typname,
    nspname: 'pg_catalog',
    typtype: 'b',
    typcategory: 'U',
    typelem: 0,
    typbasetype: 0,
    typtypmod: -1,
    extname: null,
    ...more,
  };
}

/** Decodes one present value `buf[start, start + len)` (Postgres' binary send format) into the column. */
export type Decoder = (buf: Buffer, start: number, len: number, col: ColumnBuilder) => void;

/**
 * Wire formats the COPY decoder (../copy-decoder.ts) decodes inline, in one switch: a switch keeps
 * its call sites monomorphic, which V8 inlines, where calling each column's own closure from one
 * call site is megamorphic. Everything else calls the codec's `decode`. A codec with an inline kind
 * still has a complete `decode` (used for list elements and for the edge values the inline path
 * hands back); ./registry.test.ts checks that both write the same bytes. Measured with `npm run bench`.
 */
export const DecodeKind = {
  CLOSURE: 0,
  BOOL: 1,
  INT2: 2,
  INT4: 3,
  INT8: 4,
  FLOAT4: 5,
  FLOAT8: 6,
  BYTES: 7,
  UUID: 8,
  /** timestamp/timestamptz: inline fast path, closure near the int64 edges. */
  TIMESTAMP: 9,
  /** jsonb: version byte, then text. */
  JSONB: 10,
  /** one-dimensional arrays of BYTES elements (text[], varchar[], json[] …). */
  LIST_BYTES: 11,
  /** numeric(p ≤ 18, s) as INT64: exact number fast path, closure otherwise. */
  DECIMAL64: 12,
} as const;
export type DecodeKind = (typeof DecodeKind)[keyof typeof DecodeKind];

/**
 * What one Postgres type (with its typmod) becomes in one column — resolved once, when the column
 * is planned; the COPY decoder then dispatches on `kind` per value and never looks a type up.
 */
export interface TypeCodec {
  /** The Parquet leaf: physical type, logical type, fixed length. */
  leaf: LeafType;
  /** How the column is selected in the binary COPY (`ident` is the quoted column name). */
  select(ident: string, list: boolean): string;
  /** Binary value → Parquet value (the value conversion, complete). */
  decode: Decoder;
  /** The COPY decoder's inline fast path for this wire format (CLOSURE → `decode`). */
  kind: DecodeKind;
  /** DECIMAL scale (DecodeKind.DECIMAL64). */
  scale: number;
  /** True when the value is exported as its Postgres text form. */
  textForm: boolean;
}

/**
 * One entry of the type registry: a Postgres type, identified by its OID (built-ins, whose OIDs are
 * fixed in pg_type.dat) or by its extension and name (extension types, whose OIDs differ per database).
 */
export interface TypeEntry {
  /** pg_catalog name (or the extension's type name), for docs, tests and messages. */
  name: string;
  /** The built-in's OID. */
  oid?: number;
  /** For an extension's type: the extension's name (the type is looked up by extension and `name`). */
  extension?: string;
  /** The column's codec; `typmod` is the column's (or its domain's) type modifier. */
  codec(typmod: number, column: string): TypeCodec;
}

/** `"col"`: binary types are selected as they are. */
export const selectAsIs = (ident: string): string => ident;

/** A codec for a binary type whose decoding does not depend on the column. */
export function binaryCodec(leaf: LeafType, decode: Decoder, kind: DecodeKind = DecodeKind.CLOSURE): TypeCodec {
  return { leaf, select: selectAsIs, decode, kind, scale: 0, textForm: false };
}

/** An entry whose codec is the same for every column (no typmod, no column-specific errors). */
export function fixedEntry(name: string, oid: number, codec: TypeCodec): TypeEntry {
  return { name, oid, codec: () => codec };
}
