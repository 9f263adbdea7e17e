/**
 * The Parquet column model dropship writes: flat columns and one-level LISTs (the three-level
 * structure from the Parquet LogicalTypes spec), each leaf with a physical type and an optional
 * logical type. Numeric codes are the ones in parquet.thrift.
 */
export type PhysicalType = 'BOOLEAN' | 'INT32' | 'INT64' | 'FLOAT' | 'DOUBLE' | 'BYTE_ARRAY' | 'FIXED_LEN_BYTE_ARRAY';

export const PHYSICAL_CODE: Record<PhysicalType, number> = {
  BOOLEAN: 0,
  INT32: 1,
  INT64: 2,
  FLOAT: 4,
  DOUBLE: 5,
  BYTE_ARRAY: 6,
  FIXED_LEN_BYTE_ARRAY: 7,
};

export type LogicalType =
  | { type: 'STRING' }
  | { type: 'ENUM' }
  | { type: 'JSON' }
  | { type: 'UUID' }
  | { type: 'DATE' }
  | { type: 'DECIMAL'; precision: number; scale: number }
  | { type: 'TIME'; unit: 'MICROS'; utc: boolean }
  | { type: 'TIMESTAMP'; unit: 'MICROS'; utc: boolean }
  | { type: 'INTEGER'; bitWidth: 8 | 16 | 32 | 64; signed: boolean };

export interface LeafType {
  physical: PhysicalType;
  /** Byte length, for FIXED_LEN_BYTE_ARRAY only. */
  typeLength?: number;
  logical?: LogicalType;
}

export interface ColumnSpec {
  name: string;
  /** false → REQUIRED (Postgres NOT NULL). */
  nullable: boolean;
  leaf: LeafType;
  /** Present when the column is a LIST of `leaf`; list elements are always optional. */
  list?: true;
}

export const Encoding = { PLAIN: 0, RLE: 3, RLE_DICTIONARY: 8 } as const;
export const Repetition = { REQUIRED: 0, OPTIONAL: 1, REPEATED: 2 } as const;

/** Definition/repetition levels of a column (Dremel encoding). */
export interface Levels {
  maxDef: number;
  maxRep: number;
  /** Level of a NULL column value (nullable columns only). */
  defNull: number;
  /** Level of an empty list (lists only). */
  defEmpty: number;
  /** Level of a NULL list element (lists only). */
  defNullElement: number;
}

export function levelsOf(col: ColumnSpec): Levels {
  if (!col.list) {
    return { maxDef: col.nullable ? 1 : 0, maxRep: 0, defNull: 0, defEmpty: -1, defNullElement: -1 };
  }
  // optional group col (LIST) { repeated group list { optional leaf element } }
  const base = col.nullable ? 1 : 0;
  return { maxDef: base + 2, maxRep: 1, defNull: 0, defEmpty: base, defNullElement: base + 1 };
}

/** Human-readable Parquet type, as recorded in the receipt's `columns`. */
export function describeType(col: ColumnSpec): string {
  const { leaf } = col;
  let s: string = leaf.physical;
  if (leaf.physical === 'FIXED_LEN_BYTE_ARRAY') s += `(${leaf.typeLength})`;
  const l = leaf.logical;
  if (l) {
    switch (l.type) {
      case 'DECIMAL':
        s += ` DECIMAL(${l.precision},${l.scale})`;
        break;
      case 'TIME':
      case 'TIMESTAMP':
        s += ` ${l.type}(${l.unit},${l.utc ? 'UTC' : 'LOCAL'})`;
        break;
      case 'INTEGER':
        s += ` INTEGER(${l.bitWidth},${l.signed ? 'signed' : 'unsigned'})`;
        break;
      default:
        s += ` ${l.type}`;
    }
  }
  return col.list ? `LIST<${s}>` : s;
}
