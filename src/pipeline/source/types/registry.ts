import { MappingError } from '../errors.js';
import { listCodec } from './arrays.js';
import type { PgTypeInfo, TypeCodec, TypeEntry } from './entry.js';
import { jsonTypes } from './json.js';
import { numericTypes } from './numeric.js';
import { temporalTypes } from './temporal.js';
import { STRING_CODEC, TEXT_FORM, textTypes } from './text.js';

/**
 * The type registry: one entry per Postgres type dropship exports natively — its select expression,
 * its Parquet type and its binary-COPY decoder — keyed by OID, as node-postgres' pg-types keys its
 * parsers (`register(20, parseInt64)`), with one module per type family (./numeric.ts, ./temporal.ts,
 * ./text.ts, ./json.ts), as Apache Arrow JS has one builder per type. A type is looked up once, when
 * its column is planned (src/pipeline/source/typemap.ts); the COPY decoder then dispatches on the codec's
 * `kind` per value. Domains resolve to their base type, arrays to a LIST of their element (./arrays.ts),
 * enums to their label; a type without an entry — composites, ranges, user base types, a user type
 * named like a built-in — exports in its text form. The full table with the reasons: docs/type-mapping.md.
 *
 * Measured against the switch it replaced (2026-12, shared 2-core machine, load 3–18, Node 24), three
 * pairs, old code then this back to back, medians of 3 runs each:
 *   npm run bench -- --rows 500000 --runs 3 --codecs gzip,none --wide-rows 0 --tenant-rows 20000
 *     --changes-rows 20000 --cli-runs 1
 *   dropship CPU µs/row, GZIP: 11.77 → 11.09, 10.99 → 8.72, 10.00 → 10.10
 *                        none: 7.73 → 7.20, 7.73 → 9.28, 6.96 → 5.41
 *   DuckDB 1 thread in the same runs (code unchanged, i.e. the noise), GZIP: 9.34 → 8.09, 9.13 → 8.16,
 *     7.99 → 7.66; none: 3.95 → 3.41, 4.24 → 3.28, 3.95 → 2.57
 *   node --import tsx test/bench/decode.ts --rows 200000 --runs 11|15 --baseline <old tree> (decoding
 *     only, old and new alternating in one process), CPU µs/row old → new: 1.78 → 1.45, 1.44 → 1.23,
 *     1.24 → 1.29; this tree against itself: 1.26 vs 1.39.
 * No slowdown beyond the noise (the per-value switch in ../copy-decoder.ts is unchanged).
 */
export const TYPE_ENTRIES: readonly TypeEntry[] = [...numericTypes, ...temporalTypes, ...textTypes, ...jsonTypes];

const byOid = new Map<number, TypeEntry>();
const byExtension = new Map<string, TypeEntry>();
const extensionKey = (extension: string, name: string): string => `${extension}\0${name}`;

for (const entry of TYPE_ENTRIES) {
  const [map, key] =
    entry.oid !== undefined
      ? [byOid as Map<unknown, TypeEntry>, entry.oid]
      : [byExtension as Map<unknown, TypeEntry>, extensionKey(entry.extension ?? '', entry.name)];
  if (map.has(key)) throw new Error(`type registry: two entries for ${entry.name}`);
  map.set(key, entry);
}

/**
 * The entry of a base type, by OID and namespace, never by bare name: only a type of `pg_catalog`
 * is a built-in (built-in OIDs are fixed), and an extension's type only when the extension owns
 * it. A user-defined type named like a built-in — a composite `myschema.uuid`, the row type of a
 * table called `date` — has none: its binary form is its own, and reading it as the built-in would
 * silently corrupt every value.
 */
export function entryFor(type: PgTypeInfo): TypeEntry | undefined {
  if (type.typtype !== 'b') return undefined;
  const builtin = type.nspname === 'pg_catalog' ? byOid.get(type.oid) : undefined;
  return builtin ?? (type.extname ? byExtension.get(extensionKey(type.extname, type.typname)) : undefined);
}

/** The codec of a (domain-resolved) scalar type. */
function scalarCodec(type: PgTypeInfo, typmod: number, column: string): TypeCodec {
  // Enums as plain strings: the ENUM annotation is not read as text by every reader.
  if (type.typtype === 'e') return STRING_CODEC;
  return entryFor(type)?.codec(typmod, column) ?? TEXT_FORM;
}

/**
 * A column's codec, from its type OID and typmod and the pg_type rows it refers to (src/pipeline/source/catalog.ts
 * loads them): domains are followed to their base type (taking the domain's typmod), an array
 * becomes a LIST of its element's codec.
 */
export function columnCodec(
  column: string,
  typeOid: number,
  typmod: number,
  types: ReadonlyMap<number, PgTypeInfo>,
): { codec: TypeCodec; list: boolean } {
  const resolve = (oid: number, mod: number): { type: PgTypeInfo; typmod: number } => {
    let t = types.get(oid);
    while (t && t.typtype === 'd') {
      mod = t.typtypmod;
      t = types.get(t.typbasetype);
    }
    if (!t) throw new MappingError(`column ${column}: unknown type oid ${oid}`);
    return { type: t, typmod: mod };
  };
  const { type, typmod: mod } = resolve(typeOid, typmod);
  if (type.typcategory === 'A' && type.typelem !== 0) {
    const elem = resolve(type.typelem, mod);
    return { codec: listCodec(scalarCodec(elem.type, elem.typmod, column), column), list: true };
  }
  return { codec: scalarCodec(type, mod, column), list: false };
}
