import { createHash } from 'node:crypto';
import type { Destination } from '../../accounts/destination.js';

/**
 * The bucket lifecycle rules dropship recommends to a customer, and how they meet the rules a bucket
 * already has. S3 lifecycle filters match by key prefix (and tags, size) only, so the rules are
 * scoped to dropship's **run folders** — `<prefix>/2…` (every run folder is named after its start
 * time, `2026-12-04T04:00` or `20261204T0400Z`: it starts with the year) — which leaves
 * `<prefix>/receipt.json` and `<prefix>/status.json` and everything outside the prefix untouched.
 *
 * At the bucket root (an empty prefix) no prefix can tell dropship's folders from the customer's own
 * objects (a rule on `2` would also expire the customer's `2024-report.csv`), so no rule is
 * recommended there: the customer gives the destination a prefix first.
 *
 * `put-bucket-lifecycle-configuration` replaces a bucket's whole configuration; the printed commands
 * merge instead (`mergeLifecycleRules`, and the same merge as a jq program for the customer's shell):
 * the bucket's rules are kept, except earlier dropship rules for the same prefix, which are replaced.
 */
export interface LifecycleFilter {
  Prefix?: string;
  And?: { Prefix?: string; Tags?: { Key: string; Value: string }[]; ObjectSizeGreaterThan?: number };
  Tag?: { Key: string; Value: string };
  ObjectSizeGreaterThan?: number;
  ObjectSizeLessThan?: number;
}

export interface LifecycleRule {
  ID?: string;
  Status: 'Enabled' | 'Disabled' | string;
  /** Deprecated top-level prefix of older configurations (still returned by S3 for them). */
  Prefix?: string;
  Filter?: LifecycleFilter;
  Expiration?: { Days?: number; Date?: string; ExpiredObjectDeleteMarker?: boolean };
  AbortIncompleteMultipartUpload?: { DaysAfterInitiation: number };
  [other: string]: unknown;
}

export interface LifecycleConfiguration {
  Rules: LifecycleRule[];
}

/** Days after which a dump expires, and after which an incomplete multipart upload is aborted. */
export const DUMP_EXPIRY_DAYS = 7;
export const ABORT_UPLOADS_AFTER_DAYS = 1;

/** Rule IDs of dropship's first recommendation (prefix-wide; with an empty prefix, bucket-wide). */
const LEGACY_RULE_IDS = ['dropship-expire-dumps', 'dropship-abort-incomplete-uploads'];

/** `<prefix>/`, or empty at the bucket root. */
function keyPrefix(dest: Pick<Destination, 'prefix'>): string {
  return dest.prefix ? `${dest.prefix}/` : '';
}

/** The key prefix every run folder of the destination starts with (`<prefix>/2`). */
export function runFoldersPrefix(dest: Pick<Destination, 'prefix'>): string {
  return `${keyPrefix(dest)}2`;
}

/** Rule IDs are per prefix (several destinations may share a bucket), stable across printings. */
function ruleIds(dest: Pick<Destination, 'prefix'>): { expire: string; abort: string } {
  const h = createHash('sha256').update(dest.prefix, 'utf8').digest('hex').slice(0, 10);
  return { expire: `dropship-expire-dumps-${h}`, abort: `dropship-abort-uploads-${h}` };
}

/**
 * The recommended configuration: dumps expire after 7 days and incomplete uploads are aborted after
 * 1, both only under the run folders. Empty for a destination without a prefix (see above).
 */
export function lifecycleConfiguration(dest: Pick<Destination, 'prefix'>): LifecycleConfiguration {
  if (!dest.prefix) return { Rules: [] };
  const ids = ruleIds(dest);
  const Filter = { Prefix: runFoldersPrefix(dest) };
  return {
    Rules: [
      { ID: ids.expire, Status: 'Enabled', Filter, Expiration: { Days: DUMP_EXPIRY_DAYS } },
      {
        ID: ids.abort,
        Status: 'Enabled',
        Filter,
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: ABORT_UPLOADS_AFTER_DAYS },
      },
    ],
  };
}

/** IDs a merge replaces: this destination's rules and the legacy prefix-wide ones. */
function replacedIds(ours: LifecycleConfiguration): string[] {
  return [...ours.Rules.map((r) => r.ID ?? ''), ...LEGACY_RULE_IDS];
}

/** The bucket's rules with dropship's for this prefix added (earlier dropship rules replaced). */
export function mergeLifecycleRules(
  existing: LifecycleConfiguration | undefined,
  ours: LifecycleConfiguration,
): LifecycleConfiguration {
  const replaced = new Set(replacedIds(ours));
  return { Rules: [...(existing?.Rules ?? []).filter((r) => !replaced.has(r.ID ?? '')), ...ours.Rules] };
}

/**
 * The same merge as a jq program for the customer's shell: `jq --slurpfile ours lifecycle.json
 * '<program>' current.json > merged.json` (current.json: get-bucket-lifecycle-configuration's output,
 * or `{"Rules":[]}` when the bucket has none).
 */
export function lifecycleMergeJq(ours: LifecycleConfiguration): string {
  const ids = JSON.stringify(replacedIds(ours));
  return `{Rules: ([(.Rules // [])[] | select((.ID // "") as $id | ${ids} | index($id) | not)] + $ours[0].Rules)}`;
}

/** The key prefix a rule applies to ('' = the whole bucket); undefined when the rule is limited by tags. */
function rulePrefix(rule: LifecycleRule): string | undefined {
  const f = rule.Filter;
  if (f?.Tag || f?.And?.Tags?.length) return undefined;
  return f?.And?.Prefix ?? f?.Prefix ?? rule.Prefix ?? '';
}

/** Does an enabled rule expire (or abort uploads of) `key`? S3's prefix semantics; tag-limited rules never match untagged keys. */
export function ruleReaches(rule: LifecycleRule, key: string): boolean {
  if (rule.Status !== 'Enabled') return false;
  const prefix = rulePrefix(rule);
  return prefix !== undefined && key.startsWith(prefix);
}

/**
 * The doctor's reading of a bucket's rules for one destination: expiring rules that reach into
 * dropship's folder but beyond its run folders — the bucket's other objects, or receipt.json and
 * status.json. Rules entirely elsewhere in the bucket are the customer's own business.
 */
export function lifecycleOverreach(
  rules: LifecycleRule[],
  dest: Pick<Destination, 'prefix'>,
): { rule: string; reaches: 'outside-prefix' | 'receipt' }[] {
  const folder = keyPrefix(dest);
  const runs = runFoldersPrefix(dest);
  const found: { rule: string; reaches: 'outside-prefix' | 'receipt' }[] = [];
  for (const r of rules) {
    if (r.Status !== 'Enabled' || !r.Expiration) continue;
    const p = rulePrefix(r);
    if (p === undefined || p.startsWith(runs)) continue;
    const name = r.ID ?? '(no ID)';
    if (p === '' || (folder.startsWith(p) && p.length < folder.length))
      found.push({ rule: name, reaches: 'outside-prefix' });
    else if (p.startsWith(folder) && (`${folder}receipt.json`.startsWith(p) || `${folder}status.json`.startsWith(p)))
      found.push({ rule: name, reaches: 'receipt' });
  }
  return found;
}
