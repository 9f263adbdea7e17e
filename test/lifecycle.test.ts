import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Destination } from '../src/accounts/destination.js';
import { lifecycleLines } from '../src/cli/commands/doctor.js';
import {
  type LifecycleConfiguration,
  mergeLifecycleRules,
  ruleReaches,
} from '../src/destinations/s3/bucket-lifecycle.js';
import { policyDocuments } from '../src/destinations/s3/policies.js';

/**
 * Issue 23: the lifecycle configuration `dropship policy` prints can only touch dropship's objects.
 * It is applied the way the printed commands apply it — merged by the printed jq program into a
 * bucket that already has a rule of its own — and evaluated, S3's way (an enabled rule whose prefix
 * starts the key expires it once the object is older than its days), over a bucket that holds the
 * customer's own objects beside old and new dumps, receipt.json and status.json.
 */
const work = mkdtempSync(join(tmpdir(), 'dropship-lifecycle-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const dest = (prefix: string) =>
  ({
    accountId: 'acme',
    bucket: 'acme-data',
    prefix,
    roleArn: 'arn:aws:iam::123456789012:role/dropship',
    externalId: 'ext',
  }) as Destination;

/** jq runs the printed merge where it is installed (CI installs it: .ci/run); elsewhere the same merge in TypeScript. */
const hasJq = spawnSync('jq', ['--version']).status === 0;
if (!hasJq)
  console.warn(
    'jq is not installed: the printed jq merge is checked through mergeLifecycleRules instead (apt-get install jq)',
  );

/** The printed commands' jq merge, run as the customer would run it. */
function applyPrinted(d: Destination, current: LifecycleConfiguration): LifecycleConfiguration {
  const lines = lifecycleLines(d, policyDocuments(d, 'arn:aws:iam::999999999999:role/p').lifecycle);
  const json = lines.find((l) => l.startsWith('{'));
  expect(json).toBeDefined();
  writeFileSync(join(work, 'lifecycle.json'), json!);
  writeFileSync(join(work, 'current.json'), JSON.stringify(current));
  const jq = lines.find((l) => l.trimStart().startsWith('jq --slurpfile'));
  expect(jq).toBeDefined();
  const program = /'(.*)'/.exec(jq!)![1]!;
  if (!hasJq) return mergeLifecycleRules(current, JSON.parse(json!) as LifecycleConfiguration);
  const merged = execFileSync('jq', ['--slurpfile', 'ours', 'lifecycle.json', program, 'current.json'], {
    cwd: work,
  }).toString();
  writeFileSync(join(work, 'merged.json'), merged);
  return JSON.parse(readFileSync(join(work, 'merged.json'), 'utf8')) as LifecycleConfiguration;
}

/** Which keys the configuration has deleted once every object is `ageDays` old. */
function expired(config: LifecycleConfiguration, keys: string[], ageDays: number): string[] {
  return keys.filter((k) =>
    config.Rules.some((r) => r.Expiration?.Days !== undefined && ageDays >= r.Expiration.Days && ruleReaches(r, k)),
  );
}

const ownRule = { ID: 'customer-logs', Status: 'Enabled', Filter: { Prefix: 'logs/' }, Expiration: { Days: 90 } };

describe.each(['', 'exports'])('the printed lifecycle configuration, prefix %j', (prefix) => {
  const at = (k: string) => (prefix ? `${prefix}/${k}` : k);
  const dump = at('2026-11-20T04:00/events/events_000000000000.parquet.gz');
  const portableDump = at('20261120T0400Z/events/events_000000000000.parquet');
  const customers = ['reports/2025-q4.csv', '2024-budget.xlsx', 'receipt-archive/2026.pdf', 'logs/app.log'];
  const dropshipMeta = [at('receipt.json'), at('status.json')];

  it("keeps the customer's own objects, receipt.json and status.json; expires old dumps only", () => {
    const merged = applyPrinted(dest(prefix), { Rules: [ownRule] });
    // The customer's own rule survives the merge.
    expect(merged.Rules).toContainEqual(ownRule);
    const gone = expired(merged, [...customers.filter((k) => !k.startsWith('logs/')), ...dropshipMeta, dump], 8);
    expect(gone).toEqual(prefix ? [dump] : []);
    if (prefix) {
      expect(expired(merged, [portableDump], 8)).toEqual([portableDump]);
      expect(expired(merged, [dump], 6)).toEqual([]);
    }
  });

  it('re-applying replaces dropship’s rules instead of adding copies, and drops the legacy bucket-wide rule', () => {
    const legacy = { ID: 'dropship-expire-dumps', Status: 'Enabled', Filter: { Prefix: '' }, Expiration: { Days: 7 } };
    const once = applyPrinted(dest(prefix), { Rules: [ownRule, legacy] });
    const twice = applyPrinted(dest(prefix), once);
    expect(twice).toEqual(once);
    expect(twice.Rules.map((r) => r.ID)).not.toContain('dropship-expire-dumps');
  });
});

/**
 * The printed block run whole in bash, as pasted, against a fake `aws` that keeps the bucket's configuration in a file
 * and records its calls. Red-team (retention): the block read any failure of `get-bucket-lifecycle-configuration`
 * (AccessDenied, SlowDown, a wrong profile) as "no rules", then replaced the bucket's configuration with dropship's
 * rules — or, at the bucket root, deleted it.
 */
describe.skipIf(!hasJq)('the printed merge block, run in bash', () => {
  const customerRules = {
    Rules: [ownRule, { ID: 'customer-glacier', Status: 'Enabled', Filter: { Prefix: 'archive/' }, Transitions: [] }],
    TransitionDefaultMinimumObjectSize: 'all_storage_classes_128K',
  };
  let n = 0;
  function runBlock(prefix: string, bucket: unknown, read: 'ok' | 'none' | 'throttled') {
    const dir = join(work, `block-${n++}`);
    mkdirSync(join(dir, 'bin'), { recursive: true });
    const state = join(dir, 'bucket.json');
    writeFileSync(state, JSON.stringify(bucket));
    const answer = {
      ok: `cat ${state}`,
      none: 'echo "An error occurred (NoSuchLifecycleConfiguration) when calling the GetBucketLifecycleConfiguration operation: The lifecycle configuration does not exist" >&2; exit 254',
      throttled:
        'echo "An error occurred (SlowDown) when calling the GetBucketLifecycleConfiguration operation: Please reduce your request rate." >&2; exit 254',
    }[read];
    writeFileSync(
      join(dir, 'bin', 'aws'),
      `#!/bin/bash
printf '%s\\n' "$*" >> ${dir}/calls.log
case "$2" in
  get-bucket-lifecycle-configuration) ${answer} ;;
  put-bucket-lifecycle-configuration) f=$(printf '%s' "$*" | sed -n 's|.*file://\\([^ ]*\\).*|\\1|p'); cp "$f" ${state} ;;
  delete-bucket-lifecycle) echo null > ${state} ;;
esac
`,
    );
    chmodSync(join(dir, 'bin', 'aws'), 0o755);
    const d = dest(prefix);
    const lines = lifecycleLines(d, policyDocuments(d, 'arn:aws:iam::999999999999:role/p').lifecycle);
    writeFileSync(join(dir, 'lifecycle.json'), lines.find((l) => l.startsWith('{'))!);
    const block = lines.slice(lines.indexOf('('), lines.indexOf(')') + 1).join('\n');
    const r = spawnSync('bash', ['-c', block], {
      cwd: dir,
      env: { ...process.env, PATH: `${dir}/bin:${process.env.PATH}` },
    });
    return {
      status: r.status,
      stderr: r.stderr.toString(),
      calls: readFileSync(join(dir, 'calls.log'), 'utf8').trim().split('\n'),
      bucket: JSON.parse(readFileSync(state, 'utf8')) as { Rules: { ID?: string }[] } | null,
    };
  }

  it.each(['exports', ''])('a failed read changes nothing and says so (prefix %j)', (prefix) => {
    const r = runBlock(prefix, customerRules, 'throttled');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('SlowDown');
    expect(r.stderr).toContain('could not read the lifecycle rules of acme-data: nothing changed');
    expect(r.calls).toEqual(['s3api get-bucket-lifecycle-configuration --bucket acme-data --output json']);
    expect(r.bucket).toEqual(customerRules);
  });

  it("a read that works keeps the bucket's rules and its transition size; a bucket without rules gets dropship's", () => {
    const kept = runBlock('exports', customerRules, 'ok');
    expect(kept.status).toBe(0);
    expect(kept.bucket!.Rules.map((r) => r.ID)).toEqual([
      'customer-logs',
      'customer-glacier',
      ...policyDocuments(dest('exports'), 'arn:aws:iam::999999999999:role/p').lifecycle.Rules.map((r) => r.ID),
    ]);
    expect(kept.calls[1]).toMatch(
      /^s3api put-bucket-lifecycle-configuration --bucket acme-data --lifecycle-configuration file:\/\/merged\.json --transition-default-minimum-object-size all_storage_classes_128K$/,
    );
    const fresh = runBlock('exports', null, 'none');
    expect(fresh.status).toBe(0);
    expect(fresh.bucket!.Rules).toHaveLength(2);
    // At the root dropship recommends no rule: a bucket without rules is left alone; the customer's rules are put back
    // as they were; only dropship's earlier bucket-wide rules, when they are all there is, are deleted.
    expect(runBlock('', null, 'none').calls).toHaveLength(1);
    expect(runBlock('', customerRules, 'ok').bucket).toEqual({ Rules: customerRules.Rules });
    const legacy = { Rules: [{ ID: 'dropship-expire-dumps', Status: 'Enabled', Filter: { Prefix: '' } }] };
    const dropped = runBlock('', legacy, 'ok');
    expect(dropped.calls[1]).toBe('s3api delete-bucket-lifecycle --bucket acme-data');
    expect(dropped.bucket).toBeNull();
  });
});
