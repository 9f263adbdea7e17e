// Kept apart from ./validate.ts (which loads the compiled JSON Schema validators and Ajv's runtime): the CLI's
// --help loads ./chain.ts, which uses this, and must not load Ajv (test/cli-build.test.ts).

/**
 * The largest receipt.json the customer's tools read (64 MiB: a receipt of 100,000 files is ~18 MB). A receipt that
 * is larger, or nested deeper than MAX_RECEIPT_DEPTH, is refused before JSON.parse: a 40 MB receipt of nested
 * brackets took 27.6 s and 2.2 GB in `inspect`, and ~100 MB ran out of heap (red team, customer tools).
 */
export const MAX_RECEIPT_BYTES = 64 * 1024 * 1024;
export const MAX_RECEIPT_DEPTH = 32;

/** JSON.parse of a receipt's text within MAX_RECEIPT_BYTES and MAX_RECEIPT_DEPTH; a plain Error names what is wrong. */
export function parseReceiptJson(text: string): unknown {
  if (Buffer.byteLength(text) > MAX_RECEIPT_BYTES)
    throw new Error(`larger than a receipt may be (${MAX_RECEIPT_BYTES} bytes)`);
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_RECEIPT_DEPTH)
        throw new Error(`nested deeper than a receipt may be (${MAX_RECEIPT_DEPTH} levels)`);
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return JSON.parse(text);
}
