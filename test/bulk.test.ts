import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destinationInputSchema } from '../src/accounts/destination.js';
import { dropship } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Issue 26, item 5: `dropship destinations import <file.jsonl>` and `export`. Each line registers one
 * destination through the registry's one validation (the zod schema and source checks of `add`), all
 * or nothing per line, with a per-line report; re-running a file changes nothing; a bad line is
 * reported (line number and field) and the others are registered; export → import round-trips.
 */
let h: Harness;
let dir: string;
const ROLE = 'arn:aws:iam::123456789012:role/dropship-export';

beforeAll(async () => {
  h = await startHarness();
  dir = mkdtempSync(join(tmpdir(), 'dropship-bulk-'));
  // One shared schema in tenant mode (a SaaS migrating its customers): one tenant per destination.
  await h.pool.query(`create schema saas; create table saas.events (org_id int not null, v int);
    create table saas.countries (code text primary key);`);
}, 120_000);

afterAll(async () => {
  await h?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[]) {
  return dropship(h.stack, args, { env: { DROPSHIP_LOG_LEVEL: 'silent' }, timeoutMs: 120_000 });
}

function line(i: number, over: Record<string, unknown> = {}): string {
  return JSON.stringify({
    accountId: `org${String(i).padStart(4, '0')}`,
    plan: i % 2 ? 'paid' : 'free',
    bucket: 'saas-exports',
    prefix: `customers/${i}`,
    region: 'eu-west-1',
    roleArn: ROLE,
    sourceSchema: 'saas',
    selection: { tenantColumn: 'org_id', tenantValue: String(i), globalTables: 'countries' },
    ...over,
  });
}

function file(name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

/** The report's lines: [line, account, outcome, details]. */
function report(stdout: string): string[][] {
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t'));
}

async function registered(): Promise<Map<string, { external_id: string; updated_at: Date; version: number }>> {
  const r = await h.pool.query('select account_id, external_id, updated_at, version from dropship.destinations');
  return new Map(r.rows.map((x) => [x.account_id, x]));
}

describe('destinations import', () => {
  it('registers 1,000 destinations; the same file again changes nothing', async () => {
    const path = file(
      'thousand.jsonl',
      Array.from({ length: 1000 }, (_, i) => line(i + 1)),
    );
    const first = await cli(['destinations', 'import', path]);
    expect(first.code, first.stderr).toBe(0);
    const rows = report(first.stdout);
    expect(rows).toHaveLength(1000);
    expect(rows.every((r, i) => r[0] === String(i + 1) && r[2] === 'created')).toBe(true);
    expect(rows[41]![1]).toBe('org0042');
    expect(first.stderr).toMatch(/# 1000 line\(s\): 1000 created, 0 unchanged, 0 updated, 0 failed \(\d+\.\d s\)/);
    const before = await registered();
    expect(before.size).toBe(1000);
    const d = await h.registry.get('org0042');
    expect(d.selection).toMatchObject({ tenantColumn: 'org_id', tenantValue: '42', globalTables: ['countries'] });
    expect(d.plan).toBe('free');

    const second = await cli(['destinations', 'import', path]);
    expect(second.code, second.stderr).toBe(0);
    expect(report(second.stdout).every((r) => r[2] === 'unchanged')).toBe(true);
    expect(second.stderr).toContain('1000 line(s): 0 created, 1000 unchanged, 0 updated, 0 failed');
    // Nothing was written: the same rows, external IDs, versions and update times.
    const after = await registered();
    expect(after.size).toBe(1000);
    for (const [id, row] of before) {
      expect(after.get(id)).toEqual(row);
    }
    process.stderr.write(`import timings: first ${first.stderr.trim()} · second ${second.stderr.trim()}\n`);
  }, 240_000);

  it('a file with bad lines: each reported with its line number and field, the others registered', async () => {
    const path = file('mixed.jsonl', [
      line(2001),
      line(2002, { bucket: 'Not_A_Bucket' }),
      '',
      line(2003),
      '{"accountId": "org2004", ',
      line(2005, { selection: { tenantColumn: 'org_id' } }),
      line(2006, { webhookUrl: 'https://hooks.example/x' }),
      line(2007, { sourceSchema: 'nope' }),
      line(2001, { selection: { tenantColumn: 'org_id', tenantValue: '2002', globalTables: 'countries' } }),
      line(2008),
    ]);
    const r = await cli(['destinations', 'import', path]);
    expect(r.code).toBe(1);
    const rows = report(r.stdout);
    const byLine = new Map(rows.map((x) => [Number(x[0]), x]));
    expect([...byLine.keys()]).toEqual([1, 2, 4, 5, 6, 7, 8, 9, 10]); // line 3 is blank: skipped
    expect(byLine.get(1)!.slice(1, 3)).toEqual(['org2001', 'created']);
    expect(byLine.get(2)!.slice(1, 3)).toEqual(['org2002', 'error']);
    expect(byLine.get(2)![3]).toMatch(/^bucket: bucket names use lowercase letters/);
    expect(byLine.get(4)!.slice(1, 3)).toEqual(['org2003', 'created']);
    expect(byLine.get(5)!.slice(1, 4)).toEqual(['-', 'error', expect.stringMatching(/^line: not JSON/)]);
    expect(byLine.get(6)![3]).toContain('selection.tenantValue: tenant mode needs both');
    expect(byLine.get(7)![3]).toMatch(/webhookUrl/);
    expect(byLine.get(8)![3]).toBe('sourceSchema: schema "nope" does not exist in the source database');
    // An account already registered (line 1) with another field: refused, the field named, nothing changed.
    expect(byLine.get(9)!.slice(1, 3)).toEqual(['org2001', 'error']);
    expect(byLine.get(9)![3]).toMatch(/^selection\.tenantValue: registered with a different value/);
    expect(byLine.get(10)!.slice(1, 3)).toEqual(['org2008', 'created']);
    expect(r.stderr).toContain('9 line(s): 3 created, 0 unchanged, 0 updated, 6 failed');
    const now = await registered();
    for (const id of ['org2001', 'org2003', 'org2008']) expect(now.has(id), id).toBe(true);
    for (const id of ['org2002', 'org2004', 'org2005', 'org2006', 'org2007']) expect(now.has(id), id).toBe(false);
    expect((await h.registry.get('org2001')).selection.tenantValue).toBe('2001');
  }, 120_000);

  it('--update applies a line that differs (as destinations update would); without it the line is refused', async () => {
    const setup = await cli(['destinations', 'import', file('base.jsonl', [line(3007), line(3008)])]);
    expect(setup.code, setup.stderr).toBe(0);
    const path = file('changed.jsonl', [line(3007, { plan: 'free', prefix: 'moved/7' }), line(3008)]);
    const refused = await cli(['destinations', 'import', path]);
    expect(refused.code).toBe(1);
    expect(report(refused.stdout)[0]!.slice(1, 4)).toEqual([
      'org3007',
      'error',
      expect.stringMatching(/^plan, prefix: registered with a different value \(nothing changed; --update/),
    ]);
    expect(report(refused.stdout)[1]![2]).toBe('unchanged');
    expect((await h.registry.get('org3007')).prefix).toBe('customers/3007');
    const before = await h.registry.get('org3007');
    const applied = await cli(['destinations', 'import', path, '--update']);
    expect(applied.code, applied.stderr).toBe(0);
    expect(report(applied.stdout)[0]).toEqual(['1', 'org3007', 'updated', 'plan; prefix']);
    const after = await h.registry.get('org3007');
    expect(after).toMatchObject({ plan: 'free', prefix: 'moved/7', externalId: before.externalId });
    expect(after.version).toBe(before.version + 1); // the prefix is a delivery field
  }, 60_000);

  it('a hostile account id or line cannot forge a field or a line of the report (red team, bulk)', async () => {
    // Prepare: an account id carrying a line break and tabs that spell another line; a line that is not JSON, with
    // tabs (JSON.parse's message quotes it); an account id with C1 and DEL characters.
    const forged = 'x\n2\tglobex\tcreated';
    const path = file('hostile.jsonl', [
      JSON.stringify({ accountId: forged, plan: 'paid' }),
      'n\t1\tcreated',
      JSON.stringify({ accountId: 'y\u009b2K\u007f', plan: 'paid' }),
    ]);
    // Act
    const r = await cli(['destinations', 'import', path]);
    // Assess: one report line per file line, four fields each; the ids shown escaped and quoted, never as valid ids.
    expect(r.code).toBe(1);
    const rows = report(r.stdout);
    expect(rows.map((x) => [x[0], x[1], x[2], x.length])).toEqual([
      ['1', '"x\\n2\\tglobex\\tcreated"', 'error', 4],
      ['2', '-', 'error', 4],
      ['3', '"y\\u009b2K\\u007f"', 'error', 4],
    ]);
    expect(rows[1]![3]).toMatch(/^line: not JSON .*"n\\x091\\x09created" is not valid JSON/);
    expect(r.stderr).toContain('3 line(s): 0 created, 0 unchanged, 0 updated, 3 failed');
  });

  it('an unreadable file is bad input (exit 2) and registers nothing', async () => {
    const r = await cli(['destinations', 'import', join(dir, 'missing.jsonl')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('missing.jsonl: ENOENT');
    const d = await cli(['destinations', 'import', dir]);
    expect(d.code).toBe(2);
    expect(d.stderr).toContain('not a file');
  });
});

describe('destinations export', () => {
  it('prints every destination with the fields import accepts, no secrets; export | import is all unchanged', async () => {
    // A webhook with its secret on one destination: it must not appear in the export.
    const hook = await dropship(
      h.stack,
      ['destinations', 'update', 'org0001', '--webhook-url', 'http://127.0.0.1:9/hook'],
      {
        env: {
          DROPSHIP_LOG_LEVEL: 'silent',
          DROPSHIP_WEBHOOK_ALLOW_LOOPBACK: 'true',
          DROPSHIP_WEBHOOK_KEY: Buffer.alloc(32, 7).toString('base64'),
        },
      },
    );
    expect(hook.code, hook.stderr).toBe(0);
    const secret = /Webhook signing secret: (\S+)/.exec(hook.stdout)?.[1];
    expect(secret).toBeDefined();
    const exported = await cli(['destinations', 'export']);
    expect(exported.code, exported.stderr).toBe(0);
    const lines = exported.stdout.trim().split('\n');
    const count = Number((await h.pool.query('select count(*) from dropship.destinations')).rows[0].count);
    expect(lines).toHaveLength(count);
    for (const l of lines) {
      const value = JSON.parse(l);
      expect(destinationInputSchema.safeParse(value).success, l).toBe(true);
      expect(Object.keys(value)).not.toContain('externalId');
    }
    const text = exported.stdout;
    const ids = [...(await registered()).values()].map((r) => r.external_id);
    expect(ids.some((id) => text.includes(id))).toBe(false);
    expect(text).not.toContain(secret!);
    expect(text).not.toContain('127.0.0.1:9/hook');
    const before = await registered();
    const again = await cli(['destinations', 'import', file('exported.jsonl', lines)]);
    expect(again.code, again.stderr).toBe(0);
    expect(report(again.stdout).every((r) => r[2] === 'unchanged')).toBe(true);
    expect(again.stderr).toContain(`${count} line(s): 0 created, ${count} unchanged`);
    expect(await registered()).toEqual(before);
  }, 120_000);
});
