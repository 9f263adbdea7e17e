import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropship, runOf } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/** `dropship destinations show` and `update`, as the runbook (docs/operations/runbook.md) uses them. */
let h: Harness;

beforeAll(async () => {
  h = await startHarness();
  await h.pool.query(
    `create schema showco; create table showco.t (id int primary key); insert into showco.t values (1);`,
  );
}, 120_000);

afterAll(async () => {
  await h?.stop();
});

function cli(args: string[], env: Record<string, string> = {}) {
  return dropship(h.stack, args, { env: { DROPSHIP_LOG_LEVEL: 'silent', ...env } });
}

async function add(account: string): Promise<void> {
  await h.pool.query(
    `create schema if not exists ${account}; create table if not exists ${account}.t (id int primary key)`,
  );
  const r = await cli([
    'destinations',
    'add',
    '--account',
    account,
    '--plan',
    'paid',
    '--bucket',
    `${account}-data`,
    '--region',
    'eu-west-1',
    '--role-arn',
    `arn:aws:iam::222222222222:role/${account}-export`,
    '--source-schema',
    account,
  ]);
  expect(r.code, r.stderr).toBe(0);
}

describe('destinations show', () => {
  it('shows the last failure’s reason and fix, as the customer was told them (runbook: a paused destination)', async () => {
    // Prepare: a destination whose role the customer never created, so its export fails on their side.
    await add('showco');
    const before = await cli(['destinations', 'show', 'showco']);
    expect(before.stdout).toMatch(/^last failure\s+—$/m);
    const failed = await cli(['export', '--account', 'showco']);
    expect(failed.code).toBe(1);

    // Act
    const shown = await cli(['destinations', 'show', 'showco']);

    // Assess: the reason and the fix of status.json's last_failure, and the run they came from.
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^failures\s+1 in a row$/m);
    expect(shown.stdout).toMatch(
      /^last failure\s+\S+ \(run \d{8}T\d{6}Z-\w+\): dropship could not assume the role arn:aws:iam::222222222222:role\/showco-export$/m,
    );
    expect(shown.stdout).toMatch(
      /^ {2}fix\s+make sure the role exists and its trust policy allows dropship's principal/m,
    );
    expect(shown.stdout).toMatch(/^last success\s+—$/m);
  }, 60_000);
});

describe('destinations update', () => {
  it('says a run was cancelled only when one was open (and names it)', async () => {
    // Prepare: an account with no run open.
    await add('updco');

    // Act: a change of where data is delivered, with no run open.
    const quiet = await cli(['destinations', 'update', 'updco', '--prefix', 'moved']);

    // Assess: nothing was cancelled, and nothing says so.
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout).toContain('Updated updco.');
    expect(quiet.stdout).not.toContain('cancelled');

    // Prepare: a run open for the current destination.
    const run = await h.ledger.openRun(runOf(await h.registry.get('updco')));

    // Act: another change of where data is delivered.
    const moved = await cli(['destinations', 'update', 'updco', '--prefix', 'moved-again']);

    // Assess: the open run was cancelled, and the update says so, naming it.
    expect(moved.code, moved.stderr).toBe(0);
    expect((await h.ledger.getRun(run.runId))?.status).toBe('cancelled');
    expect(moved.stdout).toContain(`the run that was open for the previous destination (${run.runId}) was cancelled`);
  }, 60_000);
});
