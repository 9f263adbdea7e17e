import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { authorize, type PolicyDocument } from '../src/devstack/iam.js';
import { REPO_ROOT } from '../src/devstack/stack.js';

/**
 * The receipt-trigger example's role reads the delivery's own folder and nothing beside it (noticed in the customer
 * tools' red team: `${PREFIX}*` also granted `dropship-staging/…` for PREFIX=dropship). The statement is taken from
 * examples/receipt-trigger/serverless.yml as written, its `!If` on the DeliveredAtRoot condition resolved as
 * CloudFormation would for each PREFIX, and judged by iam-simulate (src/devstack/iam.ts).
 */
const yml = readFileSync(join(REPO_ROOT, 'examples/receipt-trigger/serverless.yml'), 'utf8');

function statementFor(env: { BUCKET: string; PREFIX: string }): PolicyDocument {
  const action =
    /- Effect: Allow\n\s+Action: (s3:GetObject)\n\s+Resource:\s+!If \[DeliveredAtRoot, "([^"]+)", "([^"]+)"\]/.exec(
      yml,
    );
  const condition = /DeliveredAtRoot: !Equals \["\$\{env:PREFIX, ''\}", ""\]/.exec(yml);
  if (!action || !condition)
    throw new Error('the example’s GetObject statement or its condition is not where this test reads it');
  // serverless's own variables, as `serverless deploy` resolves them from the environment.
  const render = (s: string) => s.replace(/\$\{env:BUCKET\}/, env.BUCKET).replace(/\$\{env:PREFIX, ''\}/, env.PREFIX);
  const resource = render(env.PREFIX === '' ? action[2]! : action[3]!);
  return { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: action[1]!, Resource: resource }] };
}

async function canRead(env: { BUCKET: string; PREFIX: string }, key: string): Promise<boolean> {
  const principal = {
    arn: 'arn:aws:iam::111122223333:role/receipt-trigger',
    accountId: '111122223333',
    policies: [statementFor(env)],
  };
  return authorize(principal, 's3:GetObject', `arn:aws:s3:::${env.BUCKET}/${key}`);
}

describe('examples/receipt-trigger: what its role may read', () => {
  it('with a prefix: the delivery’s folder, not a sibling folder that begins with the same name, nor the rest of the bucket', async () => {
    const env = { BUCKET: 'acme-data', PREFIX: 'dropship' };
    expect(await canRead(env, 'dropship/receipt.json')).toBe(true);
    expect(await canRead(env, 'dropship/2026-12-06T04:00/events/events_000000000000.parquet.gz')).toBe(true);
    expect(await canRead(env, 'dropship-staging/receipt.json')).toBe(false);
    expect(await canRead(env, 'dropshipx')).toBe(false);
    expect(await canRead(env, 'finance/ledger.csv')).toBe(false);
  });

  it('at the bucket root (PREFIX empty): the bucket', async () => {
    const env = { BUCKET: 'acme-data', PREFIX: '' };
    expect(await canRead(env, 'receipt.json')).toBe(true);
    expect(await canRead(env, '2026-12-06T04:00/events/events_000000000000.parquet.gz')).toBe(true);
  });
});
