import { ByteSink } from './bytes.js';

/**
 * Thrift compact protocol, write side only: just what Parquet's footer and page headers need.
 * Spec: https://github.com/apache/thrift/blob/master/doc/specs/thrift-compact-protocol.md
 */
export enum CType {
  BOOL_TRUE = 1,
  BOOL_FALSE = 2,
  BYTE = 3,
  I16 = 4,
  I32 = 5,
  I64 = 6,
  DOUBLE = 7,
  BINARY = 8,
  LIST = 9,
  SET = 10,
  MAP = 11,
  STRUCT = 12,
}

export class CompactWriter {
  readonly out: ByteSink;
  private last = 0;
  private readonly stack: number[] = [];

  constructor(out = new ByteSink(256)) {
    this.out = out;
  }

  private header(id: number, type: number): void {
    const delta = id - this.last;
    if (delta > 0 && delta <= 15) {
      this.out.byte((delta << 4) | type);
    } else {
      this.out.byte(type);
      this.out.varint(zigzag32(id));
    }
    this.last = id;
  }

  i8(id: number, v: number): this {
    this.header(id, CType.BYTE);
    this.out.byte(v & 0xff);
    return this;
  }

  i32(id: number, v: number): this {
    this.header(id, CType.I32);
    this.out.varint(zigzag32(v));
    return this;
  }

  i64(id: number, v: number | bigint): this {
    this.header(id, CType.I64);
    this.out.varintBig(zigzag64(BigInt(v)));
    return this;
  }

  bool(id: number, v: boolean): this {
    this.header(id, v ? CType.BOOL_TRUE : CType.BOOL_FALSE);
    return this;
  }

  binary(id: number, v: Uint8Array): this {
    this.header(id, CType.BINARY);
    this.out.varint(v.length);
    this.out.bytes(v);
    return this;
  }

  string(id: number, v: string): this {
    return this.binary(id, Buffer.from(v, 'utf8'));
  }

  /** Opens a struct-valued field; close it with `end()`. */
  struct(id: number): this {
    this.header(id, CType.STRUCT);
    this.stack.push(this.last);
    this.last = 0;
    return this;
  }

  end(): this {
    this.out.byte(0);
    this.last = this.stack.pop() ?? 0;
    return this;
  }

  listHeader(id: number, elemType: CType, size: number): this {
    this.header(id, CType.LIST);
    if (size < 15) this.out.byte((size << 4) | elemType);
    else {
      this.out.byte(0xf0 | elemType);
      this.out.varint(size);
    }
    return this;
  }

  listI32(id: number, values: number[]): this {
    this.listHeader(id, CType.I32, values.length);
    for (const v of values) this.out.varint(zigzag32(v));
    return this;
  }

  listString(id: number, values: string[]): this {
    this.listHeader(id, CType.BINARY, values.length);
    for (const v of values) {
      const b = Buffer.from(v, 'utf8');
      this.out.varint(b.length);
      this.out.bytes(b);
    }
    return this;
  }

  /** Opens one struct element of a list; close it with `end()`. */
  element(): this {
    this.stack.push(this.last);
    this.last = 0;
    return this;
  }
}

function zigzag32(n: number): number {
  return ((n << 1) ^ (n >> 31)) >>> 0;
}

function zigzag64(n: bigint): bigint {
  return BigInt.asUintN(64, (n << 1n) ^ (n >> 63n));
}
