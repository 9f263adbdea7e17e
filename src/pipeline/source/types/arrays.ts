import { MappingError } from '../errors.js';
import { DecodeKind, type Decoder, type TypeCodec } from './entry.js';

/**
 * One-dimensional arrays → LIST of the element's codec (three-level LIST, elements OPTIONAL): an
 * empty array is an empty list; NULL elements stay NULL. The element is resolved through the
 * registry like a column's type (domains, enums, text form), so there is no entry per array type.
 */
export function listCodec(element: TypeCodec, column: string): TypeCodec {
  return {
    leaf: element.leaf,
    select: element.select,
    decode: arrayDecoder(element.decode, column),
    textForm: element.textForm,
    // text[], varchar[], json[] … decode inline; other element types through the closure.
    kind: element.kind === DecodeKind.BYTES ? DecodeKind.LIST_BYTES : DecodeKind.CLOSURE,
    scale: 0,
  };
}

/** Postgres' binary array (array_send): ndim, has-nulls flag, element OID, per dimension (size, lower bound), elements. */
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
