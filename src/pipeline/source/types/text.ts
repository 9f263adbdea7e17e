import type { LeafType } from '../../parquet/schema.js';
import { binaryCodec, DecodeKind, type Decoder, fixedEntry, type TypeCodec, type TypeEntry } from './entry.js';

/**
 * Bytes as they come: text types, bytea, uuid; enums (their label); and the text form every type
 * without an entry of its own exports as.
 */
const STRING: LeafType = { physical: 'BYTE_ARRAY', logical: { type: 'STRING' } };

export const decodeText: Decoder = (buf, start, len, col) => col.bytes(buf, start, start + len);

/** text, varchar, bpchar, name, citext — and enums: plain STRING (not every reader reads the ENUM annotation as text). */
export const STRING_CODEC: TypeCodec = binaryCodec(STRING, decodeText, DecodeKind.BYTES);

/**
 * The text form of a value is what the type's output function prints (what psql shows) — not
 * `::text`, which for some types is a different cast (inet::text adds the netmask, bool::text
 * spells true/false, bpchar::text trims). format('%s', …) calls the output function; it turns
 * NULL into '', hence the guard — num_nulls(), not `is null`, which is also true of a composite
 * whose fields are all NULL (`(,)` is a value, not NULL). Arrays keep their elements' order; an
 * empty array stays empty.
 */
export function textFormSelect(ident: string, list: boolean): string {
  if (!list) return `case when num_nulls(${ident}) = 1 then null else format('%s', ${ident}) end`;
  // unnest() flattens every dimension: a multi-dimensional array is refused here, as the binary decoder refuses one
  // (red-team finding: {{1,2},{3,4}} of numeric[] was exported as [1,2,3,4]). The failing cast depends on the value,
  // so it is evaluated only for such a value (a constant one would fail at plan time).
  const refuse = `array[(array_ndims(${ident})::text || '-dimensional array in column ${ident.replace(/'/g, "''")}: multi-dimensional arrays are not supported yet')::int::text]`;
  return `case when num_nulls(${ident}) = 1 then null when array_ndims(${ident}) > 1 then ${refuse} else coalesce((select array_agg(case when num_nulls(x) = 1 then null else format('%s', x) end order by o) from unnest(${ident}) with ordinality as u(x, o)), '{}'::text[]) end`;
}

/** Composites, ranges, user base types, timetz, interval, inet …: their text form, as STRING. */
export const TEXT_FORM: TypeCodec = {
  leaf: STRING,
  select: textFormSelect,
  decode: decodeText,
  kind: DecodeKind.BYTES,
  scale: 0,
  textForm: true,
};

export const textTypes: TypeEntry[] = [
  fixedEntry('text', 25, STRING_CODEC),
  fixedEntry('varchar', 1043, STRING_CODEC),
  fixedEntry('bpchar', 1042, STRING_CODEC),
  fixedEntry('name', 19, STRING_CODEC),
  // The citext extension's type (its OID differs per database).
  { name: 'citext', extension: 'citext', codec: () => STRING_CODEC },
  fixedEntry('bytea', 17, binaryCodec({ physical: 'BYTE_ARRAY' }, decodeText, DecodeKind.BYTES)),
  fixedEntry(
    'uuid',
    2950,
    binaryCodec(
      { physical: 'FIXED_LEN_BYTE_ARRAY', typeLength: 16, logical: { type: 'UUID' } },
      (b, s, _l, c) => c.fixed(b, s),
      DecodeKind.UUID,
    ),
  ),
];
