import { Command, CommanderError, Option } from 'commander';
import { AccountsError } from '../accounts/registry.js';
import { ConfigError, loadSettings } from '../config/settings.js';
import { LAYOUTS } from '../contracts/receipt.js';
import { isWholeSchema } from '../contracts/selection.js';
import { PLANS, slotsByPlan } from '../contracts/slots.js';
import { noteDoctorReport } from '../notify/drift.js';
import { refreshStatus } from '../notify/outcome.js';
import { webhookKey } from '../notify/store.js';
import { validateWebhookUrl, WebhookError } from '../notify/webhook.js';
import { selectionReport } from '../source/select.js';
import { App, describeDestination, printPolicies, runExports, runsTable, staleNote, tasksTable } from './commands.js';
import { compressionField, compressionOption } from './compression-option.js';
import {
  addDestinationFlags,
  changesFromOptions,
  patchFromOptions,
  selectionFromOptions,
} from './destination-flags.js';
import { loadDevTooling } from './dev-tooling.js';
import { applyWebhookUpdate, describeNotify, NotifyUsageError, registerNotifyCommands, setWebhook } from './notify.js';

/**
 * The `dropship` command line. Every command has --help with an example; errors a person can fix
 * print one clear line and exit 2; failed exports exit 1 with one line per failed table.
 */
const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

const SLOT_RE = /^\d\d:\d\d$/;

export function buildProgram(): Command {
  const program = new Command('dropship')
    .description('Deliver every customer’s tables into their own S3 bucket as gzip-compressed Parquet.')
    .showHelpAfterError('(add --help for usage)')
    // Before any subcommand is added, so that every one inherits it: usage errors are thrown to
    // main(), which exits 2 (bad input), instead of commander's own process.exit(1).
    .exitOverride()
    .addHelpText(
      'after',
      examples(
        'npm start',
        'dropship destinations add --account acme --plan paid --bucket acme-data --region eu-west-1 --role-arn arn:aws:iam::123456789012:role/dropship --source-schema acme',
        'dropship export --account acme',
      ),
    );

  const destinations = program
    .command('destinations')
    .description('Register and inspect customers’ destinations')
    .addHelpText(
      'after',
      examples('dropship destinations list', 'dropship destinations show acme', 'dropship destinations add --help'),
    );

  const add = destinations
    .command('add')
    .description('Register a destination; generates its external ID and prints the IAM policies the customer creates')
    .requiredOption('--account <id>', 'dropship account id (lowercase letters, digits, _ and -)')
    .addOption(
      new Option('--plan <plan>', 'plan: paid exports at 04:00 and 15:00 UTC, free at 04:00')
        .choices(PLANS)
        .makeOptionMandatory(),
    )
    .requiredOption('--bucket <name>', 'the customer’s bucket name (not the ARN)')
    .option('--prefix <path>', 'folder inside the bucket', '')
    .requiredOption('--region <region>', 'the bucket’s region, e.g. eu-west-1')
    .requiredOption('--role-arn <arn>', 'the role dropship assumes, in the customer’s account')
    .option('--kms-key-arn <arn>', 'KMS key for SSE-KMS, when the bucket uses one')
    .requiredOption('--source-schema <schema>', 'Postgres schema holding the account’s tables')
    .option('--webhook-url <url>', 'POST signed delivery events here (https; http only to loopback); prints the secret')
    .addOption(
      new Option('--layout <layout>', 'object layout: dreamdata (the model) or portable (no colon, .parquet)')
        .choices(LAYOUTS)
        .default('dreamdata'),
    )
    .addOption(compressionOption('gzip'))
    .addHelpText(
      'after',
      examples(
        'dropship destinations add --account acme --plan paid --bucket acme-data --prefix dropship --region eu-west-1 --role-arn arn:aws:iam::123456789012:role/dropship-export --source-schema acme',
        'dropship destinations add --account beta --plan free --bucket beta-data --region eu-west-1 --role-arn arn:aws:iam::123456789012:role/dropship-export --source-schema beta --compression zstd',
        'dropship destinations add --account initech --plan paid --bucket initech-data --region eu-west-1 --role-arn arn:aws:iam::123456789012:role/dropship-export --source-schema platform --tenant-column org_id --tenant-value 42 --global-tables countries --exclude-columns "contacts.email"',
      ),
    );
  addDestinationFlags(add, 'add-selection').action(async (o: Record<string, string | undefined>) => {
    const app = new App();
    try {
      if (o.webhookUrl) {
        validateWebhookUrl(o.webhookUrl);
        await webhookKey(app.settings); // fails before registering when the key is not configured
      }
      const dest = await (await app.registry()).add({
        accountId: o.account!,
        plan: o.plan as (typeof PLANS)[number],
        bucket: o.bucket!,
        prefix: o.prefix ?? '',
        region: o.region!,
        roleArn: o.roleArn!,
        ...(o.kmsKeyArn ? { kmsKeyArn: o.kmsKeyArn } : {}),
        sourceSchema: o.sourceSchema!,
        layout: o.layout as (typeof LAYOUTS)[number],
        ...compressionField(o),
        ...changesFromOptions(o),
        selection: selectionFromOptions(o),
      });
      out(`Registered ${dest.accountId}.\n\n${describeDestination(dest)}\n`);
      printPolicies(dest, app.settings.DROPSHIP_PRINCIPAL_ARN, out);
      if (o.webhookUrl) await setWebhook(app, dest.accountId, o.webhookUrl, out);
    } finally {
      await app.close();
    }
  });

  addDestinationFlags(
    destinations
      .command('update <account>')
      .description(
        'Change a destination (plan, bucket, prefix, region, role, KMS key, layout, tenant, table/column selection, change sets); its external ID never changes',
      )
      .addHelpText(
        'after',
        examples(
          'dropship destinations update acme --plan free',
          'dropship destinations update initech --exclude-tables "audit_*" --exclude-columns "contacts.email,*.ssn"',
          'dropship destinations update initech --include-tables ""   # clears the list: every table again',
          'dropship destinations update acme --no-kms-key-arn',
          'dropship destinations update acme --webhook-url https://hooks.acme.example/dropship',
          'dropship destinations update acme --no-webhook',
          'dropship destinations update acme --changes   # also deliver change files since the last successful delivery',
        ),
      )
      .option('--webhook-url <url>', 'POST signed events here (https; http only to loopback); prints a new secret')
      .option('--no-webhook', 'stop sending webhooks'),
    'update',
  ).action(async (account: string, o: Record<string, unknown>) => {
    const { webhookUrl, webhook, ...rest } = o;
    const patch = patchFromOptions(rest);
    const webhookGiven = webhookUrl !== undefined || webhook === false;
    if (Object.keys(patch).length === 0 && !webhookGiven)
      throw new UsageError('nothing to change (see: dropship destinations update --help)');
    const app = new App();
    try {
      const registry = await app.registry();
      const before = await registry.get(account);
      if (webhookGiven) {
        await applyWebhookUpdate(
          app,
          account,
          {
            ...(webhookUrl !== undefined ? { webhookUrl: String(webhookUrl) } : {}),
            ...(webhook === false ? { webhook: false } : {}),
          },
          out,
        );
        if (Object.keys(patch).length === 0) return;
      }
      const dest = await registry.update(account, patch);
      out(`Updated ${dest.accountId}.\n\n${describeDestination(dest)}\n`);
      if (
        before.bucket !== dest.bucket ||
        before.prefix !== dest.prefix ||
        before.roleArn !== dest.roleArn ||
        before.kmsKeyArn !== dest.kmsKeyArn
      ) {
        out('The role’s permission policy changed: the customer must update it (see also: dropship policy).\n');
        printPolicies(dest, app.settings.DROPSHIP_PRINCIPAL_ARN, out);
      }
    } finally {
      await app.close();
    }
  });

  destinations
    .command('list')
    .description('List registered destinations')
    .addHelpText('after', examples('dropship destinations list'))
    .action(async () => {
      const app = new App();
      try {
        const all = await (await app.registry()).list();
        if (all.length === 0) out('No destinations registered (add one with: dropship destinations add --help)');
        for (const d of all) {
          out(
            `${d.accountId.padEnd(20)} ${d.plan.padEnd(5)} ${d.enabled ? 'enabled ' : 'disabled'} s3://${d.bucket}/${d.prefix}  ${d.region}  ${d.roleArn}  ${d.sourceSchema}${d.selection.tenantColumn ? ` (${d.selection.tenantColumn} = ${JSON.stringify(d.selection.tenantValue)})` : ''}`,
          );
        }
      } finally {
        await app.close();
      }
    });

  destinations
    .command('show <account>')
    .description('Show a destination with the exact trust and permission policies its role needs')
    .addHelpText('after', examples('dropship destinations show acme'))
    .action(async (account: string) => {
      const app = new App();
      try {
        const d = await (await app.registry()).get(account);
        out(`${describeDestination(d)}\n${await describeNotify(app, account)}\n`);
        printPolicies(d, app.settings.DROPSHIP_PRINCIPAL_ARN, out);
      } finally {
        await app.close();
      }
    });

  for (const [name, enabled] of [
    ['disable', false],
    ['enable', true],
  ] as const) {
    destinations
      .command(`${name} <account>`)
      .description(`${enabled ? 'Resume' : 'Pause'} scheduled exports of an account`)
      .addHelpText('after', examples(`dropship destinations ${name} acme`))
      .action(async (account: string) => {
        const app = new App();
        try {
          await (await app.registry()).setEnabled(account, enabled);
          out(`${account}: ${enabled ? 'enabled' : 'disabled'}`);
          if (enabled) await refreshStatus({ pool: await app.database(), settings: app.settings }, account); // un-pause status.json
        } finally {
          await app.close();
        }
      });
  }

  destinations
    .command('remove <account>')
    .description('Remove a destination (its external ID is gone for good; data already delivered stays)')
    .addHelpText('after', examples('dropship destinations remove acme'))
    .action(async (account: string) => {
      const app = new App();
      try {
        await (await app.registry()).remove(account);
        out(`${account}: removed`);
      } finally {
        await app.close();
      }
    });

  program
    .command('export')
    .description('Export one account now, or every account due in a slot')
    .option('--account <id>', 'export this account')
    .option('--due', 'export every enabled account due in --slot')
    .option('--slot <HH:MM>', 'schedule slot: 04:00 or 15:00 (UTC)')
    .option(
      '--via-queue',
      'run the production fan-out path: open the run as the exportAccount Lambda does, then work its task messages from DROPSHIP_TASK_QUEUE_URL with worker loops in this process',
    )
    .option('--workers <n>', 'with --via-queue: worker loops (default 2)')
    .addHelpText(
      'after',
      examples(
        'dropship export --account acme',
        'dropship export --due --slot 04:00',
        'dropship export --account acme --via-queue --workers 3',
      ),
    )
    .action(async (o: { account?: string; due?: boolean; slot?: string; viaQueue?: boolean; workers?: string }) => {
      if (Boolean(o.account) === Boolean(o.due))
        throw new UsageError('give exactly one of --account <id> or --due --slot <HH:MM>');
      if (o.workers !== undefined && !o.viaQueue) throw new UsageError('--workers goes with --via-queue');
      if (o.viaQueue && !o.account) throw new UsageError('--via-queue exports one account: give --account <id>');
      const workers = o.workers === undefined ? 2 : Number(o.workers);
      if (!Number.isInteger(workers) || workers < 1 || workers > 32)
        throw new UsageError('--workers must be a whole number from 1 to 32');
      if (o.due && !(o.slot && SLOT_RE.test(o.slot)))
        throw new UsageError('--due needs --slot HH:MM (04:00 or 15:00 by default)');
      const app = new App();
      try {
        const registry = await app.registry();
        const dests = o.account
          ? [await registry.get(o.account)]
          : await registry.due(o.slot!, slotsByPlan(app.settings));
        if (dests.length === 0) {
          out(`No enabled accounts are due in slot ${o.slot}.`);
          return;
        }
        const { code } = await runExports(app, dests, o.viaQueue ? { viaQueue: { workers } } : {});
        process.exitCode = code;
      } finally {
        await app.close();
      }
    });
  program
    .command('doctor')
    .description(
      'Check a destination: role, external ID enforcement, bucket, writes, multipart + KMS, lifecycle — with the fix for each failure',
    )
    .requiredOption('--account <id>', 'the account to check')
    .option(
      '--trust-policy <file>',
      "the role's trust policy as the customer pasted it (tells 'not trusted' from 'wrong external ID')",
    )
    .addHelpText(
      'after',
      examples('dropship doctor --account acme', 'dropship doctor --account acme --trust-policy ./trust.json'),
    )
    .action(async (o: { account: string; trustPolicy?: string }) => {
      const { readFileSync } = await import('node:fs');
      const { doctor } = await import('../aws/doctor.js');
      const app = new App();
      try {
        const dest = await (await app.registry()).get(o.account);
        const trust = o.trustPolicy ? JSON.parse(readFileSync(o.trustPolicy, 'utf8')) : undefined;
        const report = await doctor(dest, {
          settings: app.settings,
          ...(app.settings.DROPSHIP_PRINCIPAL_ARN ? { principalArn: app.settings.DROPSHIP_PRINCIPAL_ARN } : {}),
          ...(trust !== undefined ? { trustPolicy: trust } : {}),
        });
        await noteDoctorReport(await app.database(), report); // counts as the day's external-ID probe
        for (const c of report.checks) {
          out(`${{ pass: '✓', fail: '✗', warn: '!' }[c.status]} ${c.name}: ${c.detail}`);
          if (c.fix && c.status !== 'pass') out(`    fix: ${c.fix}`);
        }
        // Tenant mode / table and column selection, checked against the source as it is now.
        const selection = isWholeSchema(dest.selection)
          ? undefined
          : await selectionReport(app.sourceUrl, dest.sourceSchema, dest.selection);
        if (selection) {
          out(`${selection.problems.length ? '✗' : '✓'} selection: ${selection.summary}`);
          for (const p of selection.problems) out(`    fix: ${p} (dropship destinations update ${dest.accountId} …)`);
          if (selection.problems.length) process.exitCode = 1;
        }
        out(
          report.ok && !selection?.problems.length
            ? '\nall checks passed'
            : report.ok
              ? '\nthe selection no longer fits the source schema; runs fail until it is fixed'
              : `\n${report.checks.filter((c) => c.status === 'fail').length} check(s) failed${report.exportAllowed ? '' : '; exports to this destination are refused until fixed'}`,
        );
        if (!report.ok) process.exitCode = 1;
      } finally {
        await app.close();
      }
    });

  program
    .command('policy')
    .description('Print the IAM and lifecycle documents a customer creates, ready to paste, with the AWS CLI commands')
    .requiredOption('--account <id>', 'the account')
    .option('--reader', "also a least-privilege read policy for the customer's own loader")
    .addHelpText('after', examples('dropship policy --account acme', 'dropship policy --account acme --reader'))
    .action(async (o: { account: string; reader?: boolean }) => {
      const { policyDocuments } = await import('../aws/doctor.js');
      const app = new App();
      try {
        const dest = await (await app.registry()).get(o.account);
        const principal = requirePrincipal(app);
        const docs = policyDocuments(dest, principal);
        const role = dest.roleArn.split('/').pop();
        out("# trust.json — the role trusts dropship only with this account's external ID");
        out(JSON.stringify(docs.trust, null, 2));
        out('\n# write.json — the role may write exports under the prefix, nothing else');
        out(JSON.stringify(docs.writer, null, 2));
        out('\n# lifecycle.json — recommended: expire dumps after 7 days, abort incomplete uploads after 1 day');
        out(JSON.stringify(docs.lifecycle, null, 2));
        if (o.reader) {
          out("\n# reader.json — least privilege for the customer's own loader");
          out(JSON.stringify(docs.reader, null, 2));
        }
        out('\n# AWS CLI');
        out(`aws iam create-role --role-name ${role} --assume-role-policy-document file://trust.json`);
        out(
          `aws iam put-role-policy --role-name ${role} --policy-name dropship-write --policy-document file://write.json`,
        );
        out(
          `aws s3api put-bucket-lifecycle-configuration --bucket ${dest.bucket} --lifecycle-configuration file://lifecycle.json`,
        );
        if (o.reader)
          out(
            'aws iam put-user-policy --user-name <your-loader> --policy-name dropship-read --policy-document file://reader.json',
          );
      } finally {
        await app.close();
      }
    });

  program
    .command('load')
    .description(
      'Load every table a receipt lists into Postgres or DuckDB (the customer side; uses your AWS credentials)',
    )
    .requiredOption('--receipt <s3 uri>', 's3://bucket/prefix/receipt.json')
    .requiredOption('--into <database>', 'postgres://user:pass@host/db or duckdb:/path/file.duckdb')
    .option(
      '--changes',
      'apply change sets to tables loaded from the delivery they are relative to (else load the snapshot)',
    )
    .addHelpText(
      'after',
      examples(
        'dropship load --receipt s3://acme-data/dropship/receipt.json --into postgres://me@localhost/analytics',
        'dropship load --receipt s3://acme-data/receipt.json --into duckdb:./acme.duckdb',
        'dropship load --receipt s3://acme-data/receipt.json --into duckdb:./acme.duckdb --changes',
      ),
    )
    .action(async (o: { receipt: string; into: string; changes?: boolean }) => {
      const { S3Client } = await import('@aws-sdk/client-s3');
      const { loadReceipt } = await import('../receipt/loader.js');
      if (!/^(postgres(ql)?:\/\/|duckdb:)/.test(o.into))
        throw new UsageError('--into takes postgres://… or duckdb:/path');
      const s3 = new S3Client({
        ...(process.env.DROPSHIP_S3_FORCE_PATH_STYLE === 'true' ? { forcePathStyle: true } : {}),
      });
      try {
        const loaded = await loadReceipt({
          s3,
          receiptUri: o.receipt,
          into: o.into,
          ...(o.changes ? { changes: true } : {}),
        });
        for (const t of loaded)
          out(
            `${t.table.padEnd(32)} ${t.rows.toLocaleString('en-US').padStart(14)} rows${o.changes ? `  (${t.via === 'changes' ? 'change set applied' : 'snapshot loaded'})` : ''}`,
          );
      } finally {
        s3.destroy();
      }
    });

  program
    .command('inspect <receipt>')
    .description(
      'Show what a delivery holds: the receipt’s tables (rows, files, bytes, columns with Postgres and Parquet types) and, with --sample, the first rows read with DuckDB',
    )
    .option('--sample <n>', 'also print the first n rows of each table (or of --table)')
    .option('--table <name>', 'only this table')
    .addHelpText(
      'after',
      examples(
        'dropship inspect s3://acme-data/dropship/receipt.json',
        'dropship inspect s3://acme-data/dropship/receipt.json --table events --sample 5',
        'dropship inspect .dropship/demo/out/acme-data-platform/dreamdata --sample 3',
      ) +
        '\nS3 is read with the AWS credentials in the environment (the customer’s read-only keys), AWS_ENDPOINT_URL_S3 and DROPSHIP_S3_FORCE_PATH_STYLE as for every command.\n',
    )
    .action(async (target: string, o: { sample?: string; table?: string }) => {
      const sample = o.sample === undefined ? undefined : Number(o.sample);
      if (sample !== undefined && !(Number.isInteger(sample) && sample > 0 && sample <= 10_000))
        throw new UsageError('--sample takes a whole number of rows from 1 to 10000');
      loadSettings();
      const { runInspect } = await import('./inspect.js');
      await runInspect(target, { ...(sample ? { sample } : {}), ...(o.table ? { table: o.table } : {}) }, out);
    });

  const runs = program
    .command('runs')
    .description('Watch runs: status per account and table, duration, rows, bytes, errors')
    .addHelpText(
      'after',
      examples(
        'dropship runs list',
        'dropship runs list --account acme',
        'dropship runs show 20261123T040000Z-3f9a1c',
        'dropship runs cancel 20261123T040000Z-3f9a1c',
      ),
    );
  runs
    .command('list')
    .description('Recent runs, newest first')
    .option('--account <id>', 'only this account')
    .option('--limit <n>', 'how many', '20')
    .option('--failed', 'only failed runs')
    .option('--since <age|time>', 'only runs started since: 24h, 30m, 7d, or an ISO time')
    .addHelpText(
      'after',
      examples('dropship runs list --account acme --limit 5', 'dropship runs list --failed --since 24h'),
    )
    .action(async (o: { account?: string; limit: string; failed?: boolean; since?: string }) => {
      const app = new App();
      try {
        const ledger = await app.ledger();
        const list = await ledger.listRuns({
          ...(o.account ? { accountId: o.account } : {}),
          limit: Number(o.limit),
          ...(o.failed ? { status: 'failed' as const } : {}),
          ...(o.since ? { since: parseSince(o.since) } : {}),
        });
        const stale = new Map<string, string>();
        for (const a of await ledger.activeRuns(o.account)) {
          const note = staleNote(a);
          if (note) stale.set(a.runId, note);
        }
        if (list.length === 0) out('No runs yet.');
        else out(runsTable(list, stale));
        if (stale.size > 0)
          out('\nStale runs are ended (or finished) by the next run of their account or by the sweeper.');
      } finally {
        await app.close();
      }
    });
  runs
    .command('show <runId>')
    .description('One run: its tables with status, attempts, rows, files, bytes, error')
    .addHelpText('after', examples('dropship runs show 20261123T040000Z-3f9a1c'))
    .action(async (runId: string) => {
      const app = new App();
      try {
        const ledger = await app.ledger();
        const run = await ledger.getRun(runId);
        if (!run) throw new UsageError(`no run ${runId} (see: dropship runs list)`);
        out(runsTable([run]));
        out('');
        out(tasksTable(await ledger.tasks(runId)));
        if (run.error) out(`\nerror: ${run.error}`);
      } finally {
        await app.close();
      }
    });

  runs
    .command('cancel <runId>')
    .description('Cancel a running run: its owner stops and aborts its uploads; no receipt is written')
    .option('--by <who>', 'recorded in the run’s error', 'operator')
    .addHelpText('after', examples('dropship runs cancel 20261123T040000Z-3f9a1c'))
    .action(async (runId: string, o: { by: string }) => {
      const app = new App();
      try {
        const ledger = await app.ledger();
        const res = await ledger.cancelRun({ runId, by: o.by });
        if (res.ok) {
          out(`Cancelled ${runId}. Its owner stops within DROPSHIP_RUN_STALE_SECONDS / 4 and aborts its uploads.`);
          return;
        }
        if (res.status === undefined) throw new UsageError(`no run ${runId} (see: dropship runs list)`);
        throw new UsageError(
          res.status === 'finishing'
            ? `run ${runId} is publishing its receipt and cannot be cancelled (its receipt may already be written)`
            : `run ${runId} has already ended (${res.status})`,
        );
      } finally {
        await app.close();
      }
    });

  const receipt = program
    .command('receipt')
    .description('Work with receipt.json files')
    .addHelpText('after', examples('dropship receipt validate receipt.json'));
  receipt
    .command('sql <file>')
    .description('Loading SQL for a warehouse from a receipt: Redshift COPY, Snowflake COPY INTO or Athena/Glue DDL')
    .addOption(
      new Option('--dialect <dialect>', 'target warehouse')
        .choices(['redshift', 'snowflake', 'athena'])
        .makeOptionMandatory(),
    )
    .requiredOption('--bucket <name>', 'the bucket the receipt is in')
    .option('--prefix <path>', 'the destination prefix', '')
    .option('--iam-role <arn>', 'Redshift: the role Redshift reads the bucket with')
    .option('--stage <name>', 'Snowflake: the external stage on s3://bucket/prefix/')
    .option('--changes', 'Redshift/Snowflake: MERGE statements applying the change sets instead of full loads')
    .addHelpText(
      'after',
      examples(
        'dropship receipt sql receipt.json --dialect redshift --bucket acme-data --prefix dropship --iam-role arn:aws:iam::123456789012:role/redshift',
        'dropship receipt sql receipt.json --dialect snowflake --bucket acme-data --prefix dropship --stage acme_stage --changes',
      ),
    )
    .action(
      async (
        file: string,
        o: {
          dialect: 'redshift' | 'snowflake' | 'athena';
          bucket: string;
          prefix: string;
          iamRole?: string;
          stage?: string;
          changes?: boolean;
        },
      ) => {
        const { readFileSync } = await import('node:fs');
        const { warehouseSql } = await import('../receipt/warehouse-sql.js');
        const { changesSql } = await import('../receipt/merge-sql.js');
        const value = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'));
        if (o.changes && o.dialect === 'athena')
          throw new UsageError('--changes: Athena tables are external (read in place); use redshift or snowflake');
        const sql = o.changes && o.dialect !== 'athena' ? changesSql : warehouseSql;
        process.stdout.write(
          sql(value, o.dialect as 'redshift' | 'snowflake', {
            bucket: o.bucket,
            prefix: o.prefix.replace(/^\/+|\/+$/g, ''),
            ...(o.iamRole ? { redshiftIamRole: o.iamRole } : {}),
            ...(o.stage ? { snowflakeStage: o.stage } : {}),
          }),
        );
      },
    );
  receipt
    .command('validate <file>')
    .description(
      'Check a receipt.json against the receipt contract (schemas/receipt.schema.json); one line per violation, with its JSON path',
    )
    .addHelpText(
      'after',
      examples(
        'dropship receipt validate ./receipt.json',
        'aws s3 cp s3://my-bucket/dropship/receipt.json - | dropship receipt validate -',
      ),
    )
    .action(async (file: string) => {
      const { readFileSync } = await import('node:fs');
      const { validateReceipt } = await import('../receipt/validate.js');
      let value: unknown;
      try {
        value = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'));
      } catch (e) {
        throw new UsageError(`${file}: not readable JSON (${(e as Error).message})`);
      }
      const violations = validateReceipt(value);
      if (violations.length === 0) {
        out(`${file}: valid receipt`);
        return;
      }
      for (const v of violations) process.stderr.write(`${file}: ${v.path} ${v.message}\n`);
      process.exitCode = 1;
    });

  const dev = program
    .command('dev')
    .description(
      'Run the local stack (PostgreSQL, S3, STS on 127.0.0.1) in the foreground with a loopback admin endpoint, and print its environment',
    )
    .option('--world <file>', 'JSON file declaring customers’ buckets, roles and users (see README)')
    .option('--fresh', 'start from an empty data folder')
    .option('--demo-data', 'create the demo schema acme (Dreamdata-like tables) if it does not exist')
    .option('--events <n>', 'rows in the demo events table (with --demo-data)', '100000')
    .addHelpText(
      'after',
      examples(
        'dropship dev --demo-data',
        'dropship dev --world test/stack/world.example.json',
        'DROPSHIP_DEV_DIR=/tmp/dev2 dropship dev --fresh',
      ),
    )
    .action(async (o: { world?: string; fresh?: boolean; demoData?: boolean; events: string }) => {
      const { runDev } = await loadDevTooling('dev');
      await runDev({
        ...(o.world ? { world: o.world } : {}),
        ...(o.fresh ? { fresh: true } : {}),
        ...(o.demoData ? { demoData: true } : {}),
        events: Number(o.events),
      });
    });

  dev
    .command('env')
    .description('Print the running dev stack’s environment as shell exports (for eval)')
    .addHelpText('after', examples('eval "$(npx dropship dev env)"'))
    .action(async () => {
      const { devDir, readAdminFile } = await import('./dev-client.js');
      const { REPO_ROOT } = await import('./paths.js');
      const file = readAdminFile(devDir(process.env, REPO_ROOT));
      for (const [k, v] of Object.entries(file.env)) out(`export ${k}='${v.replaceAll("'", "'\\''")}'`);
    });

  const adminOptions = (c: Command): Command =>
    c
      .option(
        '--admin-url <url>',
        'the admin endpoint `dropship dev` printed (default: read from .dropship/dev/admin.json)',
      )
      .option('--admin-token <token>', 'the admin token `dropship dev` printed (default: read from admin.json)');

  adminOptions(
    dev
      .command('provision')
      .description(
        'Create in the running dev stack the customer’s side of a registered destination: its bucket, the role with the policies `dropship policy` prints, and a read-only user (prints its keys)',
      )
      .requiredOption('--account <id>', 'the registered account'),
  )
    .addHelpText(
      'after',
      examples(
        'npx dropship dev provision --account acme',
        'npx dropship dev provision --account acme | tee .dropship/acme-loader.env',
      ),
    )
    .action(async (o: { account: string; adminUrl?: string; adminToken?: string }) => {
      const { adminTarget, applyWorld, customerWorld } = await import('./dev-client.js');
      const { REPO_ROOT } = await import('./paths.js');
      const target = adminTarget(o, process.env, REPO_ROOT);
      const app = new App();
      try {
        const dest = await (await app.registry()).get(o.account);
        const principal = requirePrincipal(app);
        const c = customerWorld(dest, principal);
        const res = await applyWorld(target, c.world);
        const user = res.users[0]!;
        out(`# created in the dev stack, AWS account ${c.awsAccountId}:`);
        out(`#   bucket ${dest.bucket} (${dest.region})`);
        out(
          `#   role   ${dest.roleArn}: trust.json and write.json as \`dropship policy --account ${dest.accountId}\` prints them`,
        );
        out(`#   user   ${user.arn}: read-only (reader.json), for the customer's loader — its keys:`);
        out(`AWS_ACCESS_KEY_ID=${user.accessKeyId} AWS_SECRET_ACCESS_KEY=${user.secretAccessKey}`);
      } finally {
        await app.close();
      }
    });

  adminOptions(
    dev
      .command('apply <world.json>')
      .description('Apply a world file (buckets, roles, users) to the running dev stack; prints the users’ keys'),
  )
    .addHelpText('after', examples('npx dropship dev apply test/stack/world.example.json'))
    .action(async (file: string, o: { adminUrl?: string; adminToken?: string }) => {
      const { readFileSync } = await import('node:fs');
      const { adminTarget, applyWorld } = await import('./dev-client.js');
      const { REPO_ROOT } = await import('./paths.js');
      loadSettings();
      let world: unknown;
      try {
        world = JSON.parse(readFileSync(file, 'utf8'));
      } catch (e) {
        throw new UsageError(`${file}: not readable JSON (${(e as Error).message})`);
      }
      const res = await applyWorld(adminTarget(o, process.env, REPO_ROOT), world);
      out(`# applied ${file}: ${res.buckets} bucket(s), ${res.roles} role(s), ${res.users.length} user(s)`);
      for (const u of res.users) {
        out(`# user ${u.arn}: AWS_ACCESS_KEY_ID=${u.accessKeyId} AWS_SECRET_ACCESS_KEY=${u.secretAccessKey}`);
      }
    });

  program
    .command('demo')
    .description('What `npm start` runs: local stack, two demo customers, a real export, a summary')
    .option('--events <n>', 'rows in each demo events table', '300000')
    .addHelpText('after', examples('npm start', 'dropship demo --events 1000000'))
    .action(async (o: { events: string }) => {
      const { runDemo } = await loadDevTooling('demo');
      process.exitCode = await runDemo({ events: Number(o.events) });
    });

  registerNotifyCommands(program, { destinations, receipt }, App, out);
  return program;
}

export class UsageError extends Error {}

/** `24h`, `30m`, `7d` (ago) or an ISO time. */
export function parseSince(v: string, now = new Date()): Date {
  const m = /^(\d+)([mhd])$/.exec(v);
  if (m)
    return new Date(now.getTime() - Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd']);
  const t = new Date(v);
  if (Number.isNaN(t.getTime())) throw new UsageError(`--since takes 24h, 30m, 7d or an ISO time, not "${v}"`);
  return t;
}

function requirePrincipal(app: App): string {
  const p = app.settings.DROPSHIP_PRINCIPAL_ARN;
  if (!p)
    throw new UsageError(
      'DROPSHIP_PRINCIPAL_ARN is not set: it is the principal the trust policy names (the Lambda role in production)',
    );
  return p;
}

export async function main(argv = process.argv): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit 0; every usage error (unknown option, bad choice, missing value) is
      // bad input: 2, as for any other input a person has to fix.
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (
      e instanceof UsageError ||
      e instanceof ConfigError ||
      e instanceof AccountsError ||
      (e instanceof Error &&
        (e.name === 'DevClientError' ||
          e.name === 'DevError' ||
          e.name === 'InspectError' ||
          e.name === 'DevToolingMissing')) ||
      e instanceof NotifyUsageError ||
      e instanceof WebhookError
    ) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
}
