import { MappingError } from '../errors.js';
import { binaryCodec, DecodeKind, fixedEntry, type TypeEntry } from './entry.js';

/**
 * date, time, timestamp, timestamptz → DATE, TIME(MICROS), TIMESTAMP(MICROS) (timestamptz with the
 * UTC flag): Postgres counts from 2000-01-01, Parquet from 1970-01-01. timetz and interval have no
 * entry: they export in their text form (./text.ts).
 */
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

function timestampEntry(name: 'timestamp' | 'timestamptz', oid: number): TypeEntry {
  const leaf = {
    physical: 'INT64',
    logical: { type: 'TIMESTAMP', unit: 'MICROS', utc: name === 'timestamptz' },
  } as const;
  return {
    name,
    oid,
    codec: (_typmod, column) =>
      binaryCodec(
        leaf,
        (b, s, _l, c) => {
          const hi = b.readInt32BE(s);
          // Fast path, exact: add the 1970→2000 offset on 32-bit halves with carry. Values near
          // the int64 edges (±infinity, the far future) take the checked BigInt path.
          if (hi > -0x7ff00000 && hi < 0x7ff00000) {
            const lo = b.readUInt32BE(s + 4) + EPOCH_LO;
            const carry = lo >= 0x100000000 ? 1 : 0;
            c.int64Parts(hi + EPOCH_HI + carry, (carry ? lo - 0x100000000 : lo) | 0);
            return;
          }
          const us = b.readBigInt64BE(s);
          if (us === INT64_MAX) return c.int64(TIMESTAMP_POS_INFINITY);
          if (us === INT64_MIN) return c.int64(TIMESTAMP_NEG_INFINITY);
          const unix = us + PG_EPOCH_MICROS;
          // Postgres reaches 294276 AD; microseconds since 1970 in int64 end in 294247 AD.
          if (unix >= TIMESTAMP_POS_INFINITY) {
            throw new MappingError(
              `column ${column}: ${name} after 294247-01-10 cannot be stored as Parquet TIMESTAMP(MICROS)`,
            );
          }
          c.int64(unix);
        },
        DecodeKind.TIMESTAMP,
      ),
  };
}

export const temporalTypes: TypeEntry[] = [
  fixedEntry(
    'date',
    1082,
    binaryCodec({ physical: 'INT32', logical: { type: 'DATE' } }, (b, s, _l, c) => {
      const days = b.readInt32BE(s);
      // Postgres dates end at 5874897 AD, so finite dates never reach the sentinels.
      c.int32(days === INT32_MAX ? DATE_POS_INFINITY : days === INT32_MIN ? DATE_NEG_INFINITY : days + PG_EPOCH_DAYS);
    }),
  ),
  fixedEntry(
    'time',
    1083,
    binaryCodec({ physical: 'INT64', logical: { type: 'TIME', unit: 'MICROS', utc: false } }, (b, s, _l, c) =>
      c.int64BE(b, s),
    ),
  ),
  timestampEntry('timestamp', 1114),
  timestampEntry('timestamptz', 1184),
];
