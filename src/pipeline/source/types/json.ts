import type { LeafType } from '../../parquet/schema.js';
import { MappingError } from '../errors.js';
import { binaryCodec, DecodeKind, fixedEntry, type TypeEntry } from './entry.js';
import { decodeText } from './text.js';

/** json and jsonb → BYTE_ARRAY JSON: the text Postgres stores (jsonb: its normalised text). */
const JSON_LEAF: LeafType = { physical: 'BYTE_ARRAY', logical: { type: 'JSON' } };

export const jsonTypes: TypeEntry[] = [
  fixedEntry('json', 114, binaryCodec(JSON_LEAF, decodeText, DecodeKind.BYTES)),
  {
    name: 'jsonb',
    oid: 3802,
    // Binary jsonb is a version byte (1) followed by the text form.
    codec: (_typmod, column) =>
      binaryCodec(
        JSON_LEAF,
        (b, s, l, c) => {
          if (b[s] !== 1) throw new MappingError(`column ${column}: unsupported jsonb binary version ${b[s]}`);
          c.bytes(b, s + 1, s + l);
        },
        DecodeKind.JSONB,
      ),
  },
];
