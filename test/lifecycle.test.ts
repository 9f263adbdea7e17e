import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  const jq = lines.find((l) => l.startsWith('jq '));
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
