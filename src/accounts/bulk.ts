import { StringDecoder } from 'node:string_decoder';
import { DropshipError } from '../contracts/errors.js';
import { ACCOUNT_ID_PATTERN, destinationInputOf } from './destination.js';
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
  /**
   * The line's account id, when it had one: as given when it is a valid account id, else its JSON string form with
   * every control character escaped (`"x\n2\tglobex"`) — never a raw tab or line break that would forge a field or a
   * line of the tab-separated report (red team, bulk).
   */
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

/** The account id a line names, if it is readable enough to tell (raw: the line's own value). */
function accountOf(value: unknown): string | undefined {
  if (value && typeof value === 'object' && 'accountId' in value) {
    const a = (value as { accountId: unknown }).accountId;
    if (typeof a === 'string' && a.length <= 100) return a;
  }
  return undefined;
}

/**
 * An account id as the report may show it: a valid one as it is; anything else quoted and escaped (JSON's escapes,
 * plus DEL, the C1 controls and the Unicode line separators JSON leaves as they are), so it can never be taken for a
 * valid id, a field or a line of the report.
 */
export function reportedAccountId(a: string): string {
  if (ACCOUNT_ID_PATTERN.test(a)) return a;
  return JSON.stringify(a).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** One problem per entry, the field first (`bucket: …`), for a line the registry refused. */
function problemsOf(e: unknown): string[] {
  if (e instanceof InvalidDestination) return e.problems;
  if (e instanceof DestinationDiffers)
    return [`${e.fields.join(', ')}: registered with a different value (nothing changed; --update applies the line)`];
  if (e instanceof DropshipError && e.badInput) return [e.message];
  throw e; // not the line's fault (the database went away): stop, the lines so far are reported
}

/** How many lines are checked and written at once (each its own transaction on its own connection). */
export const IMPORT_CONCURRENCY = 4;

/** One line's result: parsed here, registered through Registry.put. */
async function importLine(
  registry: Pick<Registry, 'put'>,
  line: number,
  text: string | typeof TOO_LONG,
  opts: { update?: boolean },
): Promise<LineResult> {
  if (text === TOO_LONG) return { line, outcome: 'error', details: [`line: longer than ${MAX_LINE_BYTES} bytes`] };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { line, outcome: 'error', details: [`line: not JSON (${(e as Error).message})`] };
  }
  const given = accountOf(value);
  const accountId = given === undefined ? undefined : reportedAccountId(given);
  const named = (r: LineResult): LineResult => (accountId !== undefined ? { ...r, accountId } : r);
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { line, outcome: 'error', details: ['line: one JSON object per line (a destination)'] };
  try {
    const r = await registry.put(value, opts);
    return named({ line, outcome: r.outcome, details: r.changed });
  } catch (e) {
    return named({ line, outcome: 'error', details: problemsOf(e) });
  }
}

/**
 * Imports the destinations of a JSONL stream; `report` hears each line's result in file order.
 * Blank lines are skipped (not counted). Up to `concurrency` lines are in flight at once (a window:
 * memory stays bounded), and a line naming an account that an earlier line still in flight names
 * waits for it, so a file behaves as if its lines ran one after the other. Errors that are not the
 * line's fault (a lost database connection) stop the import and are thrown, after every line before
 * them was reported.
 */
export async function importDestinations(
  registry: Pick<Registry, 'put'>,
  input: AsyncIterable<Buffer | string>,
  opts: { update?: boolean; concurrency?: number },
  report: (r: LineResult) => void,
): Promise<ImportSummary> {
  const summary: ImportSummary = { lines: 0, created: 0, unchanged: 0, updated: 0, failed: 0 };
  const window: Promise<LineResult>[] = [];
  const lastOfAccount = new Map<string, Promise<unknown>>();
  const limit = Math.max(1, opts.concurrency ?? IMPORT_CONCURRENCY);
  const putOpts = opts.update ? { update: true } : {};
  const settleHead = async (): Promise<void> => {
    const r = await window.shift()!;
    summary[r.outcome === 'error' ? 'failed' : r.outcome]++;
    report(r);
  };
  let line = 0;
  try {
    for await (const text of streamLines(input)) {
      line++;
      if (text !== TOO_LONG && text.trim() === '') continue;
      summary.lines++;
      const n = line;
      const account = text === TOO_LONG ? undefined : accountIdIn(text);
      const before = account !== undefined ? lastOfAccount.get(account) : undefined;
      const p = (before ?? Promise.resolve()).then(() => importLine(registry, n, text, putOpts));
      if (account !== undefined) {
        const done = p.catch(() => {});
        lastOfAccount.set(account, done);
        void done.then(() => {
          if (lastOfAccount.get(account) === done) lastOfAccount.delete(account);
        });
      }
      window.push(p);
      if (window.length >= limit) await settleHead();
    }
    while (window.length > 0) await settleHead();
  } finally {
    // On a thrown error: let the lines still in flight end (their results are not reported).
    await Promise.allSettled(window);
  }
  return summary;
}

/** The account id a line names (cheaply: parsed again in importLine; undefined when unreadable). */
function accountIdIn(text: string): string | undefined {
  try {
    return accountOf(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** `dropship destinations export`: each destination as one JSON line `import` accepts (no secrets). */
export async function* exportDestinations(registry: Pick<Registry, 'list'>): AsyncGenerator<string> {
  for (const d of await registry.list()) yield JSON.stringify(destinationInputOf(d));
}
