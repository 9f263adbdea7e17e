import { closeSync, openSync, readSync } from 'node:fs';
import { UsageError } from './usage.js';

/**
 * A JSON document a person named on the command line (`--trust-policy trust.json`), read and parsed before the
 * command connects anywhere. Whatever goes wrong is a UsageError (exit 2) naming the option, the file and, for a
 * document that is not JSON, where (line, column): never a byte of the file. JSON.parse's own message quotes the text
 * around the error, and a file named by mistake may hold a secret (a .env, a key).
 */
export const JSON_FILE_MAX_BYTES = 1024 * 1024;

export function readJsonFile(
  option: string,
  file: string,
  opts: {
    maxBytes?: number;
    /** The parser (JSON.parse): one that refuses with a plain Error of its own (parseReceiptJson's size and depth) is named. */
    parse?: (text: string) => unknown;
  } = {},
): unknown {
  const where = option ? `${option} ${file}` : file;
  const text = readBounded(where, file, opts.maxBytes ?? JSON_FILE_MAX_BYTES);
  try {
    return (opts.parse ?? JSON.parse)(text);
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw new UsageError(`${where}: ${(e as Error).message}`);
    const at = jsonSyntaxErrorOffset(text);
    if (at === undefined) throw new UsageError(`${where}: not valid JSON`);
    const before = text.slice(0, at);
    const line = before.split('\n').length;
    const column = at - before.lastIndexOf('\n');
    throw new UsageError(`${where}: not valid JSON at line ${line}, column ${column} (character ${at + 1})`);
  }
}

/**
 * The file's text (a UTF-8 BOM dropped), read up to `maxBytes`: a FIFO or /dev/stdin works, /dev/zero ends; `-` is
 * standard input.
 */
function readBounded(where: string, file: string, maxBytes: number): string {
  let fd: number;
  try {
    fd = file === '-' ? 0 : openSync(file, 'r');
  } catch (e) {
    throw new UsageError(`${where}: ${readProblem(e)}`);
  }
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for (;;) {
      const chunk = Buffer.alloc(64 * 1024);
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      size += n;
      if (size > maxBytes) throw new UsageError(`${where}: larger than ${maxBytes} bytes; is it the right file?`);
      chunks.push(chunk.subarray(0, n));
    }
    return Buffer.concat(chunks)
      .toString('utf8')
      .replace(/^\uFEFF/, '');
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${where}: ${readProblem(e)}`);
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}

function readProblem(e: unknown): string {
  const code = (e as { code?: string }).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'not readable (permission denied)';
    case 'EISDIR':
      return 'is a directory, not a file';
    default:
      return `cannot be read (${code ?? 'unknown error'})`;
  }
}

/**
 * Where (0-based character offset) the first error of `text` as strict JSON (RFC 8259) is, or undefined when it
 * parses (or is nested too deep to tell). JSON.parse says where only for some errors, and quotes the text besides.
 */
export function jsonSyntaxErrorOffset(text: string): number | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const fail = (): never => {
    throw new SyntaxErrorAt(i);
  };
  const literal = (word: string) => {
    for (const ch of word) {
      if (text[i] !== ch) fail();
      i++;
    }
  };
  const digits = () => {
    const start = i;
    while (i < text.length && text[i]! >= '0' && text[i]! <= '9') i++;
    if (i === start) fail();
  };
  const number = () => {
    if (text[i] === '-') i++;
    if (text[i] === '0') i++;
    else digits();
    if (text[i] === '.') {
      i++;
      digits();
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      digits();
    }
  };
  const string = () => {
    if (text[i] !== '"') fail();
    i++;
    for (;;) {
      if (i >= text.length) fail();
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail();
      if (c === 0x5c) {
        i++;
        const e = text[i];
        if (e === 'u') {
          for (let k = 0; k < 4; k++) {
            i++;
            if (!/[0-9a-fA-F]/.test(text[i] ?? '')) fail();
          }
        } else if (e === undefined || !'"\\/bfnrt'.includes(e)) fail();
      }
      i++;
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        string();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail();
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail();
      }
    }
    if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) number();
    else fail();
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
    return undefined;
  } catch (e) {
    if (e instanceof SyntaxErrorAt) return Math.min(e.offset, text.length);
    return undefined; // nested deeper than the stack: no position
  }
}

class SyntaxErrorAt {
  constructor(readonly offset: number) {}
}
