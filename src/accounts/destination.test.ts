import { describe, expect, it } from 'vitest';
import { destinationInputSchema } from './destination.js';

const valid = {
  accountId: 'acme',
  plan: 'paid',
  bucket: 'acme-data',
  prefix: 'dropship/exports',
  region: 'eu-west-1',
  roleArn: 'arn:aws:iam::123456789012:role/dropship-export',
  sourceSchema: 'acme',
};

const problems = (patch: Record<string, unknown>): string[] => {
  const r = destinationInputSchema.safeParse({ ...valid, ...patch });
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('destination validation at registration', () => {
  it('accepts a valid destination and normalises the prefix', () => {
    const r = destinationInputSchema.parse({ ...valid, prefix: '/dropship/exports/' });
    expect(r.prefix).toBe('dropship/exports');
    expect(r.layout).toBe('dreamdata');
  });

  it.each([
    [{ bucket: 'arn:aws:s3:::acme-data' }, 'bucket: bucket names use lowercase letters'],
    [{ bucket: 'ab' }, 'bucket: bucket names have 3–63 characters'],
    [{ bucket: 'acme..data' }, 'bucket: bucket names cannot contain ".."'],
    [{ bucket: '192.168.1.1' }, 'bucket: bucket names cannot look like an IP address'],
    [{ region: 'Ireland' }, 'region: regions look like "eu-west-1"'],
    [{ roleArn: 'arn:aws:iam::123:role/x' }, 'roleArn: role ARNs look like'],
    [{ roleArn: 'arn:aws:iam::123456789012:user/x' }, 'roleArn: role ARNs look like'],
    [{ prefix: 'a//b' }, 'prefix: prefixes cannot contain empty, "." or ".." segments'],
    [{ prefix: 'a/../b' }, 'prefix: prefixes cannot contain empty, "." or ".." segments'],
    [{ prefix: 'a\u0000b' }, 'prefix: prefixes use letters, digits and safe punctuation only'],
    [{ prefix: 'exp*' }, 'prefix: prefixes cannot contain "*", "?" or "$" (IAM reads them as wildcards)'],
    [{ prefix: 'a/b?c' }, 'prefix: prefixes cannot contain "*", "?" or "$"'],
    [{ prefix: '*' }, 'prefix: prefixes cannot contain "*", "?" or "$"'],
    [{ prefix: 'a$b' }, 'prefix: prefixes cannot contain "*", "?" or "$"'],
    [{ kmsKeyArn: 'alias/my-key' }, 'kmsKeyArn: KMS key ARNs look like'],
    [{ accountId: 'Acme Corp' }, 'accountId: account ids are 1–63 characters'],
    [{ plan: 'gold' }, 'plan:'],
    [{ bukcet: 'typo' }, 'Unrecognized key'],
    // Postgres cuts names to 63 bytes: 60 ASCII bytes and a 4-byte emoji (62 UTF-16 units) would read the 60-byte
    // schema of another account (red team, API).
    [{ sourceSchema: `${'x'.repeat(60)}\u{1F600}` }, 'sourceSchema: Postgres names are at most 63 bytes (UTF-8)'],
    [{ sourceSchema: 'a\u0000' }, 'sourceSchema: cannot contain a NUL character'],
    [
      { selection: { tenantColumn: `${'é'.repeat(32)}`, tenantValue: '1' } },
      'selection.tenantColumn: Postgres names are at most 63 bytes (UTF-8)',
    ],
  ])('rejects %j with a message that says what to fix', (patch, message) => {
    expect(problems(patch).join('\n')).toContain(message);
  });
});
