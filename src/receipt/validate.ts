import type { ErrorObject } from 'ajv';
import type { TableChanges } from '../contracts/receipt.js';
import { receipt } from '../contracts/validators.generated.js';

/**
 * The receipt contract (schemas/receipt.schema.json), checked with Ajv, plus the cross-field rules
 * a JSON Schema cannot express: file counts, row and byte totals, and keys inside the folder.
 */

/** A validator Ajv compiled: true when valid, else its `errors` (all of them: `allErrors`). */
type CompiledCheck = ((value: unknown) => boolean) & { errors?: ErrorObject[] | null };

/**
 * Precompiled by Ajv from the schema (src/receipt/schema-validators.ts, `npm run docs:validators`): no schema is compiled at
 * start (~55 ms of a cold Lambda's or CLI command's CPU).
 */
const check = receipt as CompiledCheck;

export interface Violation {
  /** JSON path of the offending value, e.g. `$.tables.events.files[0].sha256`. */
  path: string;
  message: string;
}

function toPath(pointer: string): string {
  if (!pointer) return '$';
  return `$${pointer
    .split('/')
    .slice(1)
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((seg) =>
      /^\d+$/.test(seg) ? `[${seg}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(seg) ? `.${seg}` : `[${JSON.stringify(seg)}]`,
    )
    .join('')}`;
}

function fromAjv(e: ErrorObject): Violation {
  const params = e.params as { missingProperty?: string; allowedValue?: unknown; allowedValues?: unknown[] };
  if (e.keyword === 'const')
    return { path: toPath(e.instancePath), message: `must be ${JSON.stringify(params.allowedValue)}` };
  if (e.keyword === 'enum')
    return {
      path: toPath(e.instancePath),
      message: `must be one of ${params.allowedValues?.map((v) => JSON.stringify(v)).join(', ')}`,
    };
  const extra = e.keyword === 'required' ? ` (${params.missingProperty})` : '';
  const path =
    e.keyword === 'required'
      ? `${toPath(e.instancePath)}.${(e.params as { missingProperty: string }).missingProperty}`
      : toPath(e.instancePath);
  return { path, message: `${e.message ?? 'is invalid'}${extra}` };
}

export interface ValidateOptions {
  /**
   * The destination prefix the receipt was published under (`<prefix>/receipt.json`; slashes at
   * either end ignored): every listed key must be under it. Without it, the keys must still all share
   * one prefix.
   */
  prefix?: string;
}

/**
 * Where a listed key sits: `<prefix/><folder>/<name>`, with `name` a plain object name (no slash) and
 * no empty, "." or ".." segment anywhere. Returns the key's prefix ('' or ending in '/'), or a problem.
 */
function placeOf(k: string, folder: string): { prefix: string } | { problem: string } {
  const inFolder = `${folder}/`;
  const at = k.lastIndexOf('/');
  const dir = at < 0 ? '' : k.slice(0, at + 1);
  const name = k.slice(at + 1);
  if (
    name === '' ||
    !dir.endsWith(inFolder) ||
    (dir.length > inFolder.length && !dir.slice(0, -inFolder.length).endsWith('/'))
  )
    return { problem: `is not inside the table's folder "${folder}"` };
  if (k.split('/').some((seg) => seg === '' || seg === '.' || seg === '..'))
    return { problem: 'has an empty, "." or ".." segment' };
  return { prefix: dir.slice(0, -inFolder.length) };
}

/** Checks every listed key is directly inside its folder, under one prefix (the receipt's own, when known). */
class KeyPlaces {
  private seen: string | undefined;
  constructor(
    private readonly out: Violation[],
    private readonly expected: string | undefined,
  ) {}
  check(path: string, key: string, folder: string, outside: string): void {
    const p = placeOf(key, folder);
    if ('problem' in p) {
      this.out.push({ path, message: p.problem.startsWith('is not inside') ? outside : p.problem });
      return;
    }
    if (this.expected !== undefined) {
      if (p.prefix !== this.expected)
        this.out.push({ path, message: `is not under the receipt’s prefix "${this.expected.replace(/\/$/, '')}"` });
      return;
    }
    this.seen ??= p.prefix;
    if (p.prefix !== this.seen)
      this.out.push({ path, message: `is not under the same prefix as the receipt's other files ("${this.seen}")` });
  }
}

/** The prefix a receipt is published under: its key without `/receipt.json` ('' at the bucket's root). */
export function receiptPrefix(key: string): string {
  const i = key.lastIndexOf('/');
  return i < 0 ? '' : key.slice(0, i);
}

export function validateReceipt(value: unknown, opts: ValidateOptions = {}): Violation[] {
  if (!check(value)) return (check.errors ?? []).map(fromAjv);
  const out: Violation[] = [];
  const trimmed = opts.prefix?.replace(/^\/+|\/+$/g, '');
  const places = new KeyPlaces(out, trimmed === undefined ? undefined : trimmed === '' ? '' : `${trimmed}/`);
  const chained = value as { sequence?: number; previous_receipt_sha256?: string | null };
  if (chained.sequence !== undefined && (chained.sequence === 1) !== (chained.previous_receipt_sha256 === null)) {
    out.push({
      path: '$.previous_receipt_sha256',
      message:
        chained.sequence === 1
          ? 'must be null for the first receipt (sequence 1)'
          : `must be the previous receipt's SHA-256 (sequence ${chained.sequence} is not the first)`,
    });
  }
  const receipt = value as {
    consistency?: 'delivery' | 'table';
    tables: Record<
      string,
      {
        folder: string;
        total_file_count: number;
        row_count?: number;
        bytes?: number;
        files?: { key: string; rows: number; bytes: number }[];
        changes?: TableChanges;
        snapshots?: unknown[];
      }
    >;
  };
  // Every key once in the whole receipt (files and change files): a file listed twice loaded its rows twice (red team,
  // customer tools).
  const exact = (path: string, v: number | undefined): void => {
    if (v !== undefined && !Number.isSafeInteger(v))
      out.push({ path, message: 'is larger than a count can be exactly (2^53 - 1)' });
  };
  const seen = new Map<string, string>();
  const once = (path: string, key: string): void => {
    // A control character (a newline broke the Athena symlink manifest, one key per line) is never in dropship's keys.
    if (/[\u0000-\u001f\u007f]/.test(key)) out.push({ path, message: 'holds a control character' });
    const first = seen.get(key);
    if (first !== undefined) out.push({ path, message: `lists ${JSON.stringify(key)} again (first at ${first})` });
    else seen.set(key, path);
  };
  for (const [name, t] of Object.entries(receipt.tables)) {
    const base = toPath(`/tables/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`);
    if (t.changes?.available)
      for (const [i, f] of t.changes.files.entries()) once(`${base}.changes.files[${i}].key`, f.key);
    for (const [i, f] of (t.files ?? []).entries()) once(`${base}.files[${i}].key`, f.key);
    // Counts a JavaScript number holds exactly (the schema's integers let 2^53 + 1, even 1e400, through).
    exact(`${base}.row_count`, t.row_count);
    exact(`${base}.bytes`, t.bytes);
    for (const [i, f] of (t.files ?? []).entries()) {
      exact(`${base}.files[${i}].rows`, f.rows);
      exact(`${base}.files[${i}].bytes`, f.bytes);
    }
    // A mixed delivery says so for every table; a consistent one lists no per-table snapshots.
    if (receipt.consistency === 'table' && !t.snapshots)
      out.push({ path: `${base}.snapshots`, message: "is required when consistency is 'table'" });
    if (receipt.consistency === 'delivery' && t.snapshots)
      out.push({ path: `${base}.snapshots`, message: "must be absent when consistency is 'delivery'" });
    // A change set's keys are checked whether the table lists its files or not (an entry without `files` must not
    // carry change files from elsewhere in the bucket past the prefix check: review of the customer tools).
    out.push(...changesViolations(base, t.changes, places));
    if (!t.files) continue;
    if (t.files.length !== t.total_file_count) {
      out.push({
        path: `${base}.total_file_count`,
        message: `is ${t.total_file_count} but files lists ${t.files.length}`,
      });
    }
    const rows = t.files.reduce((n, f) => n + f.rows, 0);
    if (t.row_count !== undefined && rows !== t.row_count)
      out.push({ path: `${base}.row_count`, message: `is ${t.row_count} but the files hold ${rows} rows` });
    const bytes = t.files.reduce((n, f) => n + f.bytes, 0);
    if (t.bytes !== undefined && bytes !== t.bytes)
      out.push({ path: `${base}.bytes`, message: `is ${t.bytes} but the files hold ${bytes} bytes` });
    t.files.forEach((f, i) => {
      places.check(`${base}.files[${i}].key`, f.key, t.folder, `is not inside the table's folder "${t.folder}"`);
    });
  }
  return out;
}

/** A change set's counts agree with its files; a full refresh has none. */
function changesViolations(base: string, c: TableChanges | undefined, places: KeyPlaces): Violation[] {
  if (!c?.available) return [];
  const out: Violation[] = [];
  const rows = c.files.reduce((n, f) => n + f.rows, 0);
  if (c.full_refresh && c.files.length > 0)
    out.push({ path: `${base}.changes.files`, message: 'must be empty on a full refresh' });
  if (!c.full_refresh && rows !== c.inserted + c.updated + c.deleted)
    out.push({
      path: `${base}.changes.files`,
      message: `hold ${rows} rows but inserted + updated + deleted is ${c.inserted + c.updated + c.deleted}`,
    });
  c.files.forEach((f, i) => {
    places.check(`${base}.changes.files[${i}].key`, f.key, c.folder, `is not inside "${c.folder}"`);
  });
  return out;
}

export { MAX_RECEIPT_BYTES, MAX_RECEIPT_DEPTH, parseReceiptJson } from './parse.js';
