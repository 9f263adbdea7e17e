import { StringDecoder } from 'node:string_decoder';
import { DropshipError } from '../contracts/errors.js';
import { destinationInputOf } from './destination.js';
import { DestinationDiffers, InvalidDestination, type PutResult, type Registry } from './registry.js';

/**
 * Bulk registration (`dropship destinations import <file.jsonl>` / `export`): one destination per
 * line, the same fields and the same validation as `destinations add` (Registry.put → the one zod
 * schema and source checks `add` uses). Each line is its own transaction — all of it or nothing —
 * and gets one result: created, unchanged (the same destination is registered: importing a file
 * twice changes nothing), updated (only with `update`), or error with the field named. Lines are read
 * one at a time from a stream, so memory stays bounded whatever the file's size.
 */
export interface LineResult {
  /** 1-based line number in the file. */
  line: number;
  /** The line's account id, when it had one. */
  accountId?: string;
  outcome: PutResult['outcome'] | 'error';
  /** created/updated/unchanged: the changed fields ('updated'); error: one entry per problem, `field: message`. */
  details: string[];
}

export interface ImportSummary {
  lines: number;
  created: number;
  unchanged: number;
  updated: number;
  failed: number;
}

/** A line longer than this is refused without being held in memory (a destination is well under 10 KiB). */
export const MAX_LINE_BYTES = 1024 * 1024;

/** A line that is too long: reported as that line's error, the rest of the file goes on. */
const TOO_LONG = Symbol('too long');

/**
 * The lines of a UTF-8 byte stream, '\n' or '\r\n' separated, read as the consumer asks for them
 * (for await pulls the stream: backpressure, no read-ahead beyond one chunk). A line longer than
 * `maxBytes` is yielded as TOO_LONG and its bytes are dropped as they arrive.
 */
export async function* streamLines(
  input: AsyncIterable<Buffer | string>,
  maxBytes = MAX_LINE_BYTES,
): AsyncGenerator<string | typeof TOO_LONG> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let overlong = false;
  const take = function* (text: string): Generator<string | typeof TOO_LONG> {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const line = pending + text.slice(start, nl);
      pending = '';
      start = nl + 1;
      if (overlong || line.length > maxBytes) yield TOO_LONG;
      else yield line.endsWith('\r') ? line.slice(0, -1) : line;
      overlong = false;
    }
    pending += text.slice(start);
    if (pending.length > maxBytes) {
      overlong = true;
      pending = '';
    }
  };
  for await (const chunk of input) yield* take(typeof chunk === 'string' ? chunk : decoder.write(chunk));
  yield* take(decoder.end());
  if (overlong) yield TOO_LONG;
  else if (pending.length > 0) yield pending.endsWith('\r') ? pending.slice(0, -1) : pending;
}

/** The account id a line names, if it is readable enough to tell (for the report). */
function accountOf(value: unknown): string | undefined {
  if (value && typeof value === 'object' && 'accountId' in value) {
    const a = (value as { accountId: unknown }).accountId;
    if (typeof a === 'string' && a.length <= 100) return a;
  }
  return undefined;
}

/** One problem per entry, the field first (`bucket: …`), for a line the registry refused. */
function problemsOf(e: unknown): string[] {
  if (e instanceof InvalidDestination) return e.problems;
  if (e instanceof DestinationDiffers)
    return [`${e.fields.join(', ')}: registered with a different value (nothing changed; --update applies the line)`];
  if (e instanceof DropshipError && e.badInput) return [e.message];
  throw e; // not the line's fault (the database went away): stop, the lines so far are reported
}

/**
 * Imports the destinations of a JSONL stream, one line at a time; `report` hears each line's result
 * as soon as it is known. Blank lines are skipped (not counted). Errors that are not the line's fault
 * (a lost database connection) stop the import and are thrown; every line before was reported.
 */
export async function importDestinations(
  registry: Pick<Registry, 'put'>,
  input: AsyncIterable<Buffer | string>,
  opts: { update?: boolean },
  report: (r: LineResult) => void,
): Promise<ImportSummary> {
  const summary: ImportSummary = { lines: 0, created: 0, unchanged: 0, updated: 0, failed: 0 };
  let line = 0;
  for await (const text of streamLines(input)) {
    line++;
    if (text !== TOO_LONG && text.trim() === '') continue;
    summary.lines++;
    let result: LineResult;
    if (text === TOO_LONG) {
      result = { line, outcome: 'error', details: [`line: longer than ${MAX_LINE_BYTES} bytes`] };
    } else {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        value = e;
      }
      const accountId = accountOf(value);
      if (value instanceof SyntaxError) {
        result = { line, outcome: 'error', details: [`line: not JSON (${value.message})`] };
      } else if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        result = { line, outcome: 'error', details: ['line: one JSON object per line (a destination)'] };
      } else {
        try {
          const r = await registry.put(value, opts);
          result = { line, outcome: r.outcome, details: r.changed };
        } catch (e) {
          result = { line, outcome: 'error', details: problemsOf(e) };
        }
      }
      if (accountId !== undefined) result.accountId = accountId;
    }
    summary[result.outcome === 'error' ? 'failed' : result.outcome]++;
    report(result);
  }
  return summary;
}

/** `dropship destinations export`: each destination as one JSON line `import` accepts (no secrets). */
export async function* exportDestinations(registry: Pick<Registry, 'list'>): AsyncGenerator<string> {
  for (const d of await registry.list()) yield JSON.stringify(destinationInputOf(d));
}
