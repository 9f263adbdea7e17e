import { type Command, Option } from 'commander';
import type { Destination } from '../../accounts/destination.js';
import { PLANS } from '../../contracts/plans.js';
import { LAYOUTS } from '../../contracts/receipt.js';
import { permissionPolicy, trustPolicy } from '../../destinations/s3/policies.js';
import { compressionField, compressionOption } from '../compression-option.js';
import {
  addDestinationFlags,
  changesFromOptions,
  patchFromOptions,
  selectionFromOptions,
} from '../destination-flags.js';
import { examples, out, UsageError } from '../usage.js';
import { withApp } from '../with-app.js';
import { describeNotify, printWebhookSecret } from './notify.js';

/**
 * `dropship destinations …`: register, change, list, show, pause, resume and remove customers'
 * destinations. Returns the group, which the notification commands extend (./notify.ts).
 */
export function registerDestinationCommands(program: Command): Command {
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
  addDestinationFlags(add, 'add-selection').action((o: Record<string, string | undefined>) =>
    withApp(async (app) => {
      const { createDestination } = await import('../../operations/destinations.js');
      const created = await createDestination(
        await app.operations(),
        {
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
        },
        o.webhookUrl,
      );
      const dest = created.destination;
      out(`Registered ${dest.accountId}.\n\n${await describeDestination(dest)}\n`);
      printPolicies(dest, app.settings.DROPSHIP_PRINCIPAL_ARN, out);
      if (created.webhookSecret) printWebhookSecret(created.webhookUrl!, created.webhookSecret, out);
    }),
  );

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
    await withApp(async (app) => {
      const registry = await app.registry();
      const before = await registry.get(account);
      if (webhookUrl !== undefined && webhook === false)
        throw new UsageError('give either --webhook-url <url> or --no-webhook, not both');
      // The destination and its webhook in one transaction (src/operations/destinations.ts): a webhook address the
      // update would refuse is refused before anything changes, and a failure setting it changes nothing.
      const { updateDestination } = await import('../../operations/destinations.js');
      const done = await updateDestination(
        await app.operations(),
        account,
        patch,
        webhookUrl !== undefined ? String(webhookUrl) : webhook === false ? null : undefined,
      );
      if (done.webhook === null) out(`${account}: webhook removed`);
      else if (done.webhook) printWebhookSecret(done.webhook.url, done.webhook.secret, out);
      if (Object.keys(patch).length === 0) return;
      const dest = done.destination;
      out(`Updated ${dest.accountId}.\n\n${await describeDestination(dest)}\n`);
      printPolicyChange(before, dest, done.cancelledRunIds ?? [], app.settings.DROPSHIP_PRINCIPAL_ARN);
    });
  });

  destinations
    .command('list')
    .description('List registered destinations')
    .option('--paused', 'only destinations paused after consecutive failed runs (resume: destinations enable)')
    .addHelpText('after', examples('dropship destinations list', 'dropship destinations list --paused'))
    .action((o: { paused?: boolean }) =>
      withApp(async (app) => {
        const all = await (await app.registry()).list();
        const { StatusStore } = await import('../../notify/store.js');
        const paused = await new StatusStore(await app.database()).paused();
        const shown = o.paused ? all.filter((d) => paused.has(d.accountId)) : all;
        if (shown.length === 0)
          out(
            o.paused
              ? 'No paused destinations.'
              : 'No destinations registered (add one with: dropship destinations add --help)',
          );
        for (const d of shown) {
          const state = paused.has(d.accountId) ? 'paused  ' : d.enabled ? 'enabled ' : 'disabled';
          out(
            `${d.accountId.padEnd(20)} ${d.plan.padEnd(5)} ${state} s3://${d.bucket}/${d.prefix}  ${d.region}  ${d.roleArn}  ${d.sourceSchema}${d.selection.tenantColumn ? ` (${d.selection.tenantColumn} = ${JSON.stringify(d.selection.tenantValue)})` : ''}${paused.has(d.accountId) ? `  since ${paused.get(d.accountId)!.toISOString().slice(0, 16)}` : ''}`,
          );
        }
      }),
    );

  destinations
    .command('show <account>')
    .description('Show a destination with the exact trust and permission policies its role needs')
    .addHelpText('after', examples('dropship destinations show acme'))
    .action((account: string) =>
      withApp(async (app) => {
        const d = await (await app.registry()).get(account);
        out(`${await describeDestination(d)}\n${await describeNotify(app, account)}\n`);
        printPolicies(d, app.settings.DROPSHIP_PRINCIPAL_ARN, out);
      }),
    );

  for (const [name, enabled] of [
    ['disable', false],
    ['enable', true],
  ] as const) {
    destinations
      .command(`${name} <account>`)
      .description(`${enabled ? 'Resume' : 'Pause'} scheduled exports of an account`)
      .addHelpText('after', examples(`dropship destinations ${name} acme`))
      .action((account: string) =>
        withApp(async (app) => {
          await (await app.registry()).setEnabled(account, enabled);
          out(`${account}: ${enabled ? 'enabled' : 'disabled'}`);
          const { refreshStatus } = await import('../../notify/outcome.js');
          if (enabled) await refreshStatus({ pool: await app.database(), settings: app.settings }, account); // un-pause status.json
        }),
      );
  }

  destinations
    .command('remove <account>')
    .description(
      'Remove a destination (its external ID is gone for good; data already delivered stays; an open run is cancelled; adding the account again starts afresh)',
    )
    .addHelpText('after', examples('dropship destinations remove acme'))
    .action((account: string) =>
      withApp(async (app) => {
        await (await app.registry()).remove(account);
        out(`${account}: removed`);
      }),
    );

  return destinations;
}

function printPolicies(dest: Destination, principalArn: string | undefined, out: (s: string) => void): void {
  out(`External ID (put it in the role's trust policy; it never changes): ${dest.externalId}\n`);
  if (principalArn) {
    out('Trust policy for the role (IAM > Roles > Trust relationships):');
    out(JSON.stringify(trustPolicy(dest, principalArn), null, 2));
  } else {
    out('(set DROPSHIP_PRINCIPAL_ARN to print the trust policy with dropship’s principal filled in)');
  }
  out('\nPermission policy for the role:');
  out(JSON.stringify(permissionPolicy(dest), null, 2));
}

/** Loads the selection's wording (zod-backed) only when a destination is shown, not for --help. */
async function describeDestination(d: Destination): Promise<string> {
  const { describeSelection } = await import('../../contracts/selection.js');
  return [
    `account       ${d.accountId}${d.enabled ? '' : '  (disabled)'}`,
    `plan          ${d.plan}`,
    `destination   s3://${d.bucket}/${d.prefix ? `${d.prefix}/` : ''}  (${d.region})`,
    `role          ${d.roleArn}`,
    `kms key       ${d.kmsKeyArn ?? '—'}`,
    `source schema ${d.sourceSchema}`,
    `layout        ${d.layout}`,
    ...describeSelection(d.selection),
    `compression   ${d.compression}`,
    `changes       ${d.changes ? 'yes (change files since the last successful delivery)' : 'no'}`,
    `registered    ${d.createdAt.toISOString()}`,
  ].join('\n');
}

/** After an update: what changed for runs in flight, and the policies the customer must install when they changed. */
function printPolicyChange(
  before: Destination,
  dest: Destination,
  cancelledRunIds: readonly string[],
  principalArn: string | undefined,
): void {
  // Said only when a run was open, and so cancelled (the registry reports which); no run open, nothing to say.
  if (cancelledRunIds.length > 0)
    out(
      `Where or how data is delivered changed: the run that was open for the previous destination (${cancelledRunIds.join(', ')}) was cancelled (it delivers nothing more); the next run delivers to this one.\n`,
    );
  if (
    before.bucket !== dest.bucket ||
    before.prefix !== dest.prefix ||
    before.roleArn !== dest.roleArn ||
    before.kmsKeyArn !== dest.kmsKeyArn
  ) {
    out('The role’s permission policy changed: the customer must update it (see also: dropship policy).\n');
    printPolicies(dest, principalArn, out);
  }
}
