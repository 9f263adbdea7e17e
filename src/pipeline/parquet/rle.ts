import type { ByteSink } from './bytes.js';

/** Bits needed to store levels 0..maxLevel. */
export function bitWidth(maxLevel: number): number {
  return maxLevel === 0 ? 0 : 32 - Math.clz32(maxLevel);
}

/**
 * RLE / bit-packing hybrid encoding (Parquet "RLE" encoding), used for definition and
 * repetition levels. Runs of 8 or more equal values become RLE runs; everything else is
 * bit-packed in groups of 8. A bit-packed run must hold a multiple of 8 values unless it is
 * the last one, so before an RLE run the pending literals are topped up from the run.
 */
export function encodeHybrid(values: ArrayLike<number>, count: number, width: number, out: ByteSink): void {
  if (width === 0 || count === 0) return;
  let litStart = 0;
  let i = 0;
  while (i < count) {
    const v = values[i]!;
    let j = i + 1;
    while (j < count && values[j] === v) j++;
    let runStart = i;
    const run = j - i;
    if (run >= 8) {
      const pending = runStart - litStart;
      const pad = (8 - (pending % 8)) % 8;
      if (pending > 0) {
        runStart += pad;
        writeBitPacked(values, litStart, runStart, width, out);
      }
      if (j > runStart) writeRle(v, j - runStart, width, out);
      litStart = j;
    }
    i = j;
  }
  if (litStart < count) writeBitPacked(values, litStart, count, width, out);
}

function writeRle(value: number, run: number, width: number, out: ByteSink): void {
  out.varint(run * 2);
  const bytes = (width + 7) >> 3;
  for (let b = 0; b < bytes; b++) out.byte((value >> (8 * b)) & 0xff);
}

function writeBitPacked(values: ArrayLike<number>, start: number, end: number, width: number, out: ByteSink): void {
  const groups = Math.ceil((end - start) / 8);
  out.varint(groups * 2 + 1);
  out.ensure(groups * width);
  const total = groups * 8;
  let acc = 0;
  let bits = 0;
  if (width <= 24) {
    // Integer accumulator: at most 24 + 7 bits are pending.
    for (let k = 0; k < total; k++) {
      const idx = start + k;
      acc |= (idx < end ? values[idx]! : 0) << bits;
      bits += width;
      while (bits >= 8) {
        out.buf[out.pos++] = acc & 0xff;
        acc >>>= 8;
        bits -= 8;
      }
    }
    return;
  }
  // Wider values: accumulate in a double (exact to 2^53).
  for (let k = 0; k < total; k++) {
    const idx = start + k;
    acc += (idx < end ? values[idx]! : 0) * 2 ** bits;
    bits += width;
    while (bits >= 8) {
      out.buf[out.pos++] = acc % 256;
      acc = Math.floor(acc / 256);
      bits -= 8;
    }
  }
}

/** PLAIN encoding of booleans: one bit per value, least significant bit first. */
export function packBooleans(values: Uint8Array, count: number, out: ByteSink): void {
  const bytes = (count + 7) >> 3;
  out.ensure(bytes);
  for (let b = 0; b < bytes; b++) {
    let byte = 0;
    for (let k = 0; k < 8; k++) {
      const idx = b * 8 + k;
      if (idx < count && values[idx]) byte |= 1 << k;
    }
    out.buf[out.pos++] = byte;
  }
}
