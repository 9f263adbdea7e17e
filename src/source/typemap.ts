import { quoteIdent } from '../contracts/sql.js';
import type { ColumnBuilder } from '../parquet/column.js';
import type { ColumnSpec, LeafType } from '../parquet/schema.js';
import { MappingError } from './errors.js';

/**
 * Postgres → Parquet type mapping, written once. Each column gets
 *   - the expression that selects it in the binary COPY (`"col"`, or `"col"::text` for types
 *     exported in their text form),
 *   - the Parquet column spec,
 *   - a decoder from Postgres' binary send format straight into the column builder.
 * The full table with the reasons lives in docs/type-mapping.md.
 */
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

export interface PgColumn {
  name: string;
  notNull: boolean;
  typeOid: number;
  typmod: number;
  /** format_type() of the column, e.g. `numeric(18,4)`. */
  pgType: string;
}

/** Decodes one present value `buf[start, start + len)` into the column. */
export type Decoder = (buf: Buffer, start: number, len: number, col: ColumnBuilder) => void;

/**
 * Kinds the COPY decoder handles inline (a switch keeps its call sites monomorphic, which V8
 * inlines); everything else calls the column's Decoder closure. Measured with `npm run bench`.
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

export interface ColumnPlan {
  name: string;
  pgType: string;
  spec: ColumnSpec;
  select: string;
  decode: Decoder;
  /** True when the value is exported as its Postgres text form. */
  textForm: boolean /** How the COPY decoder decodes a present value (CLOSURE → `decode`). */;
  kind: DecodeKind;
  /** DECIMAL scale (DecodeKind.DECIMAL64). */
  scale: number;
}

interface Scalar {
  leaf: LeafType;
  decode: Decoder;
  textForm?: boolean;
  kind?: DecodeKind;
  /** DECIMAL scale, for DecodeKind.DECIMAL64. */
  scale?: number;
}

const PG_EPOCH_DAYS = 10_957; // 2000-01-01 − 1970-01-01
const PG_EPOCH_MICROS = 946_684_800_000_000n;
export const EPOCH_HI = Number(PG_EPOCH_MICROS >> 32n); // 220417
export const EPOCH_LO = Number(PG_EPOCH_MICROS & 0xffffffffn); // 993517568
const INT64_MAX = 0x7fffffffffffffffn;
const INT64_MIN = -0x8000000000000000n;
const INT32_MAX = 0x7fffffff;
const INT32_MIN = -0x80000000;
/**
 * ±infinity of date/timestamp are written as the values DuckDB, Spark and Arrow use for them:
 * the largest and the negated largest value of the physical type (DuckDB reads them back as
 * ±infinity; other readers see the far future/past, which orders correctly).
 */
const DATE_POS_INFINITY = INT32_MAX;
const DATE_NEG_INFINITY = -INT32_MAX;
const TIMESTAMP_POS_INFINITY = INT64_MAX;
const TIMESTAMP_NEG_INFINITY = -INT64_MAX;

const STRING: LeafType = { physical: 'BYTE_ARRAY', logical: { type: 'STRING' } };

const decodeText: Decoder = (buf, start, len, col) => col.bytes(buf, start, start + len);

const TEXT_FORM: Scalar = { leaf: STRING, decode: decodeText, textForm: true, kind: DecodeKind.BYTES };

/**
 * The text form of a value is what the type's output function prints (what psql shows) — not
 * `::text`, which for some types is a different cast (inet::text adds the netmask, bool::text
 * spells true/false, bpchar::text trims). format('%s', …) calls the output function; it turns
 * NULL into '', hence the guard — num_nulls(), not `is null`, which is also true of a composite
 * whose fields are all NULL (`(,)` is a value, not NULL). Arrays keep their elements' order; an
 * empty array stays empty.
 */
function textFormSelect(ident: string, list: boolean): string {
  if (!list) return `case when num_nulls(${ident}) = 1 then null else format('%s', ${ident}) end`;
  return `case when num_nulls(${ident}) = 1 then null else coalesce((select array_agg(case when num_nulls(x) = 1 then null else format('%s', x) end order by o) from unnest(${ident}) with ordinality as u(x, o)), '{}'::text[]) end`;
}

/**
 * The built-in a type is, by namespace: only types of `pg_catalog` are built-ins (and citext only
 * when it is the citext extension's own type). A user-defined type named like a built-in — a
 * composite `myschema.uuid`, the row type of a table called `date` — is none of them: its binary
 * form is its own, and reading it as the built-in would silently corrupt every value.
 */
function builtinName(type: PgTypeInfo): string | undefined {
  if (type.nspname === 'pg_catalog' && type.typtype === 'b') return type.typname;
  if (type.extname === 'citext' && type.typname === 'citext' && type.typtype === 'b') return 'citext';
  return undefined;
}

function scalarFor(type: PgTypeInfo, typmod: number, column: string): Scalar {
  // Enums as plain strings: the ENUM annotation is not read as text by every reader.
  if (type.typtype === 'e') return { leaf: STRING, decode: decodeText, kind: DecodeKind.BYTES };
  // Anything that is not a built-in (composites, ranges, user base types …) exports in its text form.
  switch (builtinName(type)) {
    case 'bool':
      return { leaf: { physical: 'BOOLEAN' }, decode: (b, s, _l, c) => c.boolean(b[s] !== 0), kind: DecodeKind.BOOL };
    case 'int2':
      return {
        leaf: { physical: 'INT32', logical: { type: 'INTEGER', bitWidth: 16, signed: true } },
        decode: (b, s, _l, c) => c.int32(b.readInt16BE(s)),
        kind: DecodeKind.INT2,
      };
    case 'int4':
      return { leaf: { physical: 'INT32' }, decode: (b, s, _l, c) => c.int32(b.readInt32BE(s)), kind: DecodeKind.INT4 };
    case 'int8':
      return { leaf: { physical: 'INT64' }, decode: (b, s, _l, c) => c.int64BE(b, s), kind: DecodeKind.INT8 };
    case 'float4':
      return {
        leaf: { physical: 'FLOAT' },
        decode: (b, s, _l, c) => c.float(b.readFloatBE(s)),
        kind: DecodeKind.FLOAT4,
      };
    case 'float8':
      return {
        leaf: { physical: 'DOUBLE' },
        decode: (b, s, _l, c) => c.double(b.readDoubleBE(s)),
        kind: DecodeKind.FLOAT8,
      };
    case 'numeric':
      return typmod < 0 ? TEXT_FORM : numericScalar(typmod, column);
    case 'text':
    case 'varchar':
    case 'bpchar':
    case 'name':
    case 'citext':
      return { leaf: STRING, decode: decodeText, kind: DecodeKind.BYTES };
    case 'uuid':
      return {
        leaf: { physical: 'FIXED_LEN_BYTE_ARRAY', typeLength: 16, logical: { type: 'UUID' } },
        decode: (b, s, _l, c) => c.fixed(b, s),
        kind: DecodeKind.UUID,
      };
    case 'json':
      return {
        leaf: { physical: 'BYTE_ARRAY', logical: { type: 'JSON' } },
        decode: decodeText,
        kind: DecodeKind.BYTES,
      };
    case 'jsonb':
      // Binary jsonb is a version byte (1) followed by the text form.
      return {
        leaf: { physical: 'BYTE_ARRAY', logical: { type: 'JSON' } },
        decode: (b, s, l, c) => {
          if (b[s] !== 1) throw new MappingError(`column ${column}: unsupported jsonb binary version ${b[s]}`);
          c.bytes(b, s + 1, s + l);
        },
        kind: DecodeKind.JSONB,
      };
    case 'bytea':
      return { leaf: { physical: 'BYTE_ARRAY' }, decode: decodeText, kind: DecodeKind.BYTES };
    case 'date':
      return {
        leaf: { physical: 'INT32', logical: { type: 'DATE' } },
        decode: (b, s, _l, c) => {
          const days = b.readInt32BE(s);
          // Postgres dates end at 5874897 AD, so finite dates never reach the sentinels.
          c.int32(
            days === INT32_MAX ? DATE_POS_INFINITY : days === INT32_MIN ? DATE_NEG_INFINITY : days + PG_EPOCH_DAYS,
          );
        },
      };
    case 'timestamp':
    case 'timestamptz': {
      const utc = type.typname === 'timestamptz';
      return {
        leaf: { physical: 'INT64', logical: { type: 'TIMESTAMP', unit: 'MICROS', utc } },
        decode: (b, s, _l, c) => {
          const hi = b.readInt32BE(s);
          // Fast path, exact: add the 1970→2000 offset on 32-bit halves with carry. Values near
          // the int64 edges (±infinity, the far future) take the checked BigInt path.
          if (hi > -0x7ff00000 && hi < 0x7ff00000) {
            const lo = b.readUInt32BE(s + 4) + EPOCH_LO;
            const carry = lo >= 0x100000000 ? 1 : 0;
            c.int64Parts(hi + EPOCH_HI + carry, carry ? lo - 0x100000000 : lo);
            return;
          }
          const us = b.readBigInt64BE(s);
          if (us === INT64_MAX) return c.int64(TIMESTAMP_POS_INFINITY);
          if (us === INT64_MIN) return c.int64(TIMESTAMP_NEG_INFINITY);
          const unix = us + PG_EPOCH_MICROS;
          // Postgres reaches 294276 AD; microseconds since 1970 in int64 end in 294247 AD.
          if (unix >= TIMESTAMP_POS_INFINITY) {
            throw new MappingError(
              `column ${column}: ${type.typname} after 294247-01-10 cannot be stored as Parquet TIMESTAMP(MICROS)`,
            );
          }
          c.int64(unix);
        },
        kind: DecodeKind.TIMESTAMP,
      };
    }
    case 'time':
      return {
        leaf: { physical: 'INT64', logical: { type: 'TIME', unit: 'MICROS', utc: false } },
        decode: (b, s, _l, c) => c.int64BE(b, s),
      };
    default:
      return TEXT_FORM;
  }
}

/** numeric(p,s) → DECIMAL(p,s) in INT32 (p ≤ 9), INT64 (p ≤ 18) or FIXED_LEN_BYTE_ARRAY. */
function numericScalar(typmod: number, column: string): Scalar {
  const precision = ((typmod - 4) >> 16) & 0xffff;
  // The scale is an 11-bit signed value since Postgres 15 (negative scales are allowed).
  const scale = (((typmod - 4) & 0x7ff) << 21) >> 21;
  if (scale < 0 || scale > precision) {
    throw new MappingError(`column ${column}: numeric(${precision},${scale}) has no Parquet DECIMAL equivalent`);
  }
  const logical = { type: 'DECIMAL' as const, precision, scale };
  const unscaled = (b: Buffer, s: number): bigint => numericUnscaled(b, s, scale, column);
  if (precision <= 9) {
    return {
      leaf: { physical: 'INT32', logical },
      decode: (b, s, _l, c) => {
        const v = numericUnscaledNumber(b, s, scale);
        c.int32(v !== undefined ? v : Number(unscaled(b, s)));
      },
    };
  }
  if (precision <= 18) {
    return {
      leaf: { physical: 'INT64', logical },
      decode: (b, s, _l, c) => {
        const v = numericUnscaledNumber(b, s, scale);
        if (v === undefined) return c.int64(unscaled(b, s));
        const hi = Math.floor(v / 0x100000000);
        c.int64Parts(hi, v - hi * 0x100000000);
      },
      kind: DecodeKind.DECIMAL64,
      scale,
    };
  }
  const bytes = decimalBytes(precision);
  const scratch = Buffer.alloc(bytes);
  return {
    leaf: { physical: 'FIXED_LEN_BYTE_ARRAY', typeLength: bytes, logical },
    decode: (b, s, _l, c) => {
      let v = BigInt.asUintN(bytes * 8, unscaled(b, s));
      for (let i = bytes - 1; i >= 0; i--) {
        scratch[i] = Number(v & 0xffn);
        v >>= 8n;
      }
      c.fixed(scratch, 0);
    },
  };
}

/** Smallest byte width whose signed range holds every value of `precision` digits. */
function decimalBytes(precision: number): number {
  const max = 10n ** BigInt(precision) - 1n;
  let bytes = 1;
  while (max >= 1n << BigInt(bytes * 8 - 1)) bytes++;
  return bytes;
}

const POW10: bigint[] = Array.from({ length: 200 }, (_, i) => 10n ** BigInt(i));

const POW10_NUM: number[] = Array.from({ length: 23 }, (_, i) => 10 ** i);

/**
 * Postgres binary numeric → unscaled integer at `scale` as a JS number, when every step is exact
 * (all intermediate values below 2^53); undefined otherwise (and for NaN/±Infinity), so the caller
 * takes the BigInt path.
 */
export function numericUnscaledNumber(b: Buffer, s: number, scale: number): number | undefined {
  const ndigits = b.readInt16BE(s);
  const sign = b.readUInt16BE(s + 4);
  if (sign !== 0 && sign !== 0x4000) return undefined;
  let acc = 0;
  for (let i = 0; i < ndigits; i++) {
    if (acc > 900_719_925_473) return undefined; // acc * 10000 + 9999 could pass 2^53
    acc = acc * 10000 + b.readInt16BE(s + 8 + 2 * i);
  }
  const exp = 4 * (b.readInt16BE(s + 2) - ndigits + 1) + scale;
  let v: number;
  if (exp >= 0) {
    if (exp > 22) return undefined;
    v = acc * POW10_NUM[exp]!;
    if (v > Number.MAX_SAFE_INTEGER) return undefined;
  } else {
    if (-exp > 22) return undefined;
    const d = POW10_NUM[-exp]!;
    v = Math.trunc(acc / d);
    // Only digits below the scale are dropped; they are zero (dscale ≤ scale), so the division is exact.
    if (v * d !== acc) return undefined;
  }
  return sign === 0x4000 ? -v : v;
}

/** Postgres binary numeric → unscaled integer at `scale` (exact). */
export function numericUnscaled(b: Buffer, s: number, scale: number, column: string): bigint {
  const ndigits = b.readInt16BE(s);
  const weight = b.readInt16BE(s + 2);
  const sign = b.readUInt16BE(s + 4);
  if (sign === 0xc000) throw new MappingError(`column ${column}: numeric NaN has no Parquet DECIMAL value`);
  if (sign === 0xd000 || sign === 0xf000) {
    throw new MappingError(`column ${column}: numeric ±Infinity has no Parquet DECIMAL value`);
  }
  let acc = 0n;
  for (let i = 0; i < ndigits; i++) acc = acc * 10000n + BigInt(b.readInt16BE(s + 8 + 2 * i));
  const exp = 4 * (weight - ndigits + 1) + scale;
  const v = exp >= 0 ? acc * POW10[exp]! : acc / POW10[-exp]!;
  return sign === 0x4000 ? -v : v;
}

/** One-dimensional arrays → LIST; an empty array is an empty list; NULL elements stay NULL. */
function arrayDecoder(element: Decoder, column: string): Decoder {
  return (b, s, _l, c) => {
    const ndim = b.readInt32BE(s);
    c.beginList();
    if (ndim > 1) {
      throw new MappingError(`column ${column}: multi-dimensional arrays are not supported yet`);
    }
    if (ndim === 1) {
      const n = b.readInt32BE(s + 12);
      let p = s + 20;
      for (let i = 0; i < n; i++) {
        const len = b.readInt32BE(p);
        p += 4;
        if (len < 0) c.nullElement();
        else {
          element(b, p, len, c);
          p += len;
        }
      }
    }
    c.endList();
  };
}

export function planColumn(col: PgColumn, types: Map<number, PgTypeInfo>): ColumnPlan {
  const resolve = (oid: number, typmod: number): { type: PgTypeInfo; typmod: number } => {
    let t = types.get(oid);
    let mod = typmod;
    while (t && t.typtype === 'd') {
      mod = t.typtypmod;
      t = types.get(t.typbasetype);
    }
    if (!t) throw new MappingError(`column ${col.name}: unknown type oid ${oid}`);
    return { type: t, typmod: mod };
  };
  const { type, typmod } = resolve(col.typeOid, col.typmod);
  const ident = quoteIdent(col.name);
  if (type.typcategory === 'A' && type.typelem !== 0) {
    const elem = resolve(type.typelem, typmod);
    const scalar = scalarFor(elem.type, elem.typmod, col.name);
    return {
      name: col.name,
      pgType: col.pgType,
      spec: { name: col.name, nullable: !col.notNull, leaf: scalar.leaf, list: true },
      select: scalar.textForm ? textFormSelect(ident, true) : ident,
      decode: arrayDecoder(scalar.decode, col.name),
      textForm: scalar.textForm ?? false,
      kind: scalar.kind === DecodeKind.BYTES ? DecodeKind.LIST_BYTES : DecodeKind.CLOSURE,
      scale: 0,
    };
  }
  const scalar = scalarFor(type, typmod, col.name);
  return {
    name: col.name,
    pgType: col.pgType,
    spec: { name: col.name, nullable: !col.notNull, leaf: scalar.leaf },
    select: scalar.textForm ? textFormSelect(ident, false) : ident,
    decode: scalar.decode,
    textForm: scalar.textForm ?? false,
    kind: scalar.kind ?? DecodeKind.CLOSURE,
    scale: scalar.scale ?? 0,
  };
}
