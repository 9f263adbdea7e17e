import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { App } from '../cli/app.js';
import { runExports } from '../cli/commands/export.js';
import { formatBytes, formatCount } from '../cli/format.js';
import { withApp } from '../cli/with-app.js';
import type { Receipt } from '../contracts/receipt.js';
import { allSlots, type Plan, type SlotsByPlan, slotsByPlan } from '../contracts/slots.js';
import { type Customer, createDemoSchema, customerS3, setupCustomer } from './demo.js';
import { LocalStack, REPO_ROOT } from './stack.js';

/**
 * `npm start`: boots the local stack, creates two demo customers the way a customer would
 * (bucket + role with the printed policies), exports every account due in the first configured
 * slot the demo customers are due in (DROPSHIP_PAID_SLOTS / DROPSHIP_FREE_SLOTS; 04:00 by default),
 * prints the summary, which slot ran and where the files landed, copies them out for inspection,
 * and stops everything.
 */
const say = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

export async function runDemo(opts: { events: number }): Promise<number> {
  const base = join(REPO_ROOT, '.dropship', 'demo');
  rmSync(base, { recursive: true, force: true });
  say('dropship demo: starting PostgreSQL, S3 and STS on 127.0.0.1 …');
  const stack = await LocalStack.start({ dataDir: join(base, 'stack') });
  Object.assign(process.env, stack.env(), { DROPSHIP_S3_FORCE_PATH_STYLE: 'true' });
  try {
    return await withApp((app) => demo(app, stack, base, opts));
  } finally {
    await stack.stop();
    say('local stack stopped.');
  }
}

async function demo(app: App, stack: LocalStack, base: string, opts: { events: number }): Promise<number> {
  const registry = await app.registry();
  say(
    `creating demo data: schemas acme and globex (${formatCount(opts.events)} and ${formatCount(Math.floor(opts.events / 3))} events rows) …`,
  );
  const pg = await import('pg');
  const client = new pg.default.Client({ connectionString: stack.databaseUrl });
  await client.connect();
  try {
    await createDemoSchema(client, 'acme', opts.events, 0.11);
    await createDemoSchema(client, 'globex', Math.floor(opts.events / 3), 0.22);
    // As autovacuum would have by now in production: the planner's row estimates drive progress.
    await client.query('analyze');
  } finally {
    await client.end();
  }
  const customers: Customer[] = [
    await setupCustomer(stack, registry, {
      accountId: 'acme',
      awsAccountId: '222222222222',
      bucket: 'acme-data-platform',
      prefix: 'dreamdata',
      region: 'eu-west-1',
      plan: 'paid',
      schema: 'acme',
    }),
    await setupCustomer(stack, registry, {
      accountId: 'globex',
      awsAccountId: '333333333333',
      bucket: 'globex-exports',
      region: 'us-east-1',
      plan: 'free',
      schema: 'globex',
    }),
  ];
  for (const c of customers) {
    say(
      `registered ${c.destination.accountId} (${c.destination.plan}) → s3://${c.destination.bucket}/${c.destination.prefix} via ${c.destination.roleArn}`,
    );
  }
  const slots = slotsByPlan(app.settings);
  const slot = demoSlot(
    slots,
    customers.map((c) => c.destination.plan),
  );
  const due = await registry.due(slot, slots);
  say(`exporting the ${due.length} accounts due in the ${slot} UTC slot …\n`);
  const { code, outcomes } = await runExports(app, due, { quietLogs: true, slot });
  const notDue = customers.filter((c) => !due.some((d) => d.accountId === c.destination.accountId));
  say(
    `\nslot ${slot} UTC ran for ${due.map((d) => d.accountId).join(', ')}${notDue.map((c) => `; ${c.destination.accountId} (${c.destination.plan}) is not due in it (its slots: ${slots[c.destination.plan].join(', ')})`).join('')}`,
  );

  const outDir = join(base, 'out');
  say('\nwhere it landed:');
  for (const c of customers) {
    const o = outcomes.get(c.destination.accountId);
    if (!o?.ok) continue;
    const receipt = await copyOut(stack, c, o.receiptKey, outDir);
    const files = Object.values(receipt.tables).reduce((n, t) => n + t.total_file_count, 0);
    const bytes = Object.values(receipt.tables).reduce((n, t) => n + t.bytes, 0);
    say(
      `  ${c.destination.accountId.padEnd(7)} s3://${c.destination.bucket}/${o.receiptKey}  (${files} Parquet files, ${formatBytes(bytes)}, run ${o.runId})`,
    );
  }
  const rel = relative(process.cwd(), outDir) || outDir;
  say(`\ncopies for inspection: ${rel}/<bucket>/<key>`);
  const acme = customers[0]!.destination;
  if (outcomes.get(acme.accountId)?.ok) {
    say('look at what was delivered (tables, columns, types, first rows read with the bundled DuckDB):');
    say(`  npx dropship inspect ${join(rel, acme.bucket, acme.prefix)} --table events --sample 5`);
  }
  return code;
}

/**
 * The slot the demo runs: the first configured slot (UTC, in time order) every demo plan is due
 * in, else the first one any of them is due in.
 */
export function demoSlot(slots: SlotsByPlan, plans: Plan[]): string {
  const all = allSlots(slots);
  const dueIn = (slot: string) => plans.filter((p) => slots[p].includes(slot)).length;
  return all.find((s) => dueIn(s) === plans.length) ?? all.find((s) => dueIn(s) > 0) ?? all[0]!;
}

/** Downloads a run's receipt and files with the customer's own read credentials. */
async function copyOut(stack: LocalStack, c: Customer, receiptKey: string, outDir: string): Promise<Receipt> {
  const s3 = customerS3(stack.s3.endpoint, c.destination.region, c.reader);
  try {
    const get = async (key: string): Promise<Buffer> => {
      const res = await s3.send(new GetObjectCommand({ Bucket: c.destination.bucket, Key: key }));
      const bytes = Buffer.from(await res.Body!.transformToByteArray());
      const path = join(outDir, c.destination.bucket, key);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, bytes);
      return bytes;
    };
    const receipt = JSON.parse((await get(receiptKey)).toString('utf8')) as Receipt;
    for (const t of Object.values(receipt.tables)) for (const f of t.files) await get(f.key);
    return receipt;
  } finally {
    s3.destroy();
  }
}
