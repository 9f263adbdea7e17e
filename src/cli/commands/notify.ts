import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { DropshipError } from '../../contracts/errors.js';
import { EXTERNAL_ID_PROBE_HOURS } from '../../notify/probe.js';
import { DEFAULT_TOLERANCE_SECONDS, encryptSecret, generateSecret, verify } from '../../notify/webhook.js';
import { verifyLink } from '../../receipt/chain.js';
import type { App } from '../app.js';
import { examples, type Out, out } from '../usage.js';
import { withApp } from '../with-app.js';

/**
 * The notification commands: webhook set-up and rotation, drift checks, signature and receipt-chain
 * verification. Registered onto the program's existing `destinations` and `receipt` groups.
 */

/** The webhook and its new signing secret, shown once. */
export function printWebhookSecret(url: string, secret: string, out: Out): void {
  out(`Webhook: ${url}`);
  out(`Webhook signing secret: ${secret}`);
  out('(shown once: give it to the receiver now; rotate it with: dropship destinations rotate-webhook-secret)');
}

/** A command line that cannot work. Not retryable. */
export class NotifyUsageError extends DropshipError {
  readonly code: string = 'usage';
  override readonly badInput: boolean = true;
  constructor(message: string) {
    super(message, undefined, { retryable: false });
    this.name = 'NotifyUsageError';
  }
}

/** One line per fact for `destinations show`. */
export async function describeNotify(app: App, accountId: string): Promise<string> {
  const { StatusStore } = await import('../../notify/store.js');
  const row = await new StatusStore(await app.database()).get(accountId);
  return [
    `webhook       ${row.webhookUrl ?? '—'}`,
    `failures      ${row.consecutiveFailures} in a row${row.pausedAt ? `  (paused since ${row.pausedAt.toISOString()}; resume with: dropship destinations enable ${accountId})` : ''}`,
    // The last failure as the customer was told it (status.json's last_failure): its reason and its fix.
    ...(row.lastFailure
      ? [
          `last failure  ${row.lastFailure.at} (run ${row.lastFailure.run_id}): ${row.lastFailure.reason}`,
          `  fix         ${row.lastFailure.fix}`,
        ]
      : ['last failure  —']),
    `last success  ${row.lastSuccess ? `${row.lastSuccess.finished_at} (run ${row.lastSuccess.run_id})` : '—'}`,
    `last check    ${row.lastCheckAt ? row.lastCheckAt.toISOString() : '—'}`,
    `ext-ID probe  ${row.externalIdVerifiedAt ? `verified ${row.externalIdVerifiedAt.toISOString()}` : 'not yet verified'}`,
  ].join('\n');
}

export function registerNotifyCommands(program: Command, groups: { destinations: Command; receipt: Command }): void {
  const { destinations, receipt } = groups;

  destinations
    .command('rotate-webhook-secret <account>')
    .description('Replace the webhook signing secret (prints the new one once; the old one stops at once)')
    .addHelpText('after', examples('dropship destinations rotate-webhook-secret acme'))
    .action((account: string) =>
      withApp(async (app) => {
        const { StatusStore, webhookKey } = await import('../../notify/store.js');
        const { DestinationReplaced } = await import('../../accounts/registry.js');
        const store = new StatusStore(await app.database());
        const dest = await (await app.registry()).get(account);
        const row = await store.get(account);
        if (!row.webhookUrl)
          throw new NotifyUsageError(
            `${account} has no webhook (set one with: dropship destinations update ${account} --webhook-url …)`,
          );
        const secret = generateSecret();
        // Of the registration read above: one removed and registered again meanwhile keeps its own secret.
        if (!(await store.setSecret(account, dest.generation, encryptSecret(secret, await webhookKey(app.settings)))))
          throw new DestinationReplaced(account);
        out(`Webhook signing secret: ${secret}`);
        out('(shown once; events from now on are signed with it)');
      }),
    );

  destinations
    .command('check')
    .description(
      `Drift check before a slot: role, bucket and region, a multipart upload (with KMS) started and aborted; the external-ID probe at most every ${EXTERNAL_ID_PROBE_HOURS} h. Failures notify the customer (destination.check_failed)`,
    )
    .option('--account <id>', 'only this account (default: every enabled destination)')
    .option('--slot <HH:MM>', 'only the destinations due in this slot')
    .option('--probe', 'run the external-ID probe now, even if it ran in the last day')
    .addHelpText(
      'after',
      examples(
        'dropship destinations check',
        'dropship destinations check --account acme',
        'dropship destinations check --slot 15:00',
      ),
    )
    .action((o: { account?: string; slot?: string; probe?: boolean }) =>
      withApp(async (app) => {
        if (o.slot !== undefined) (await import('../slot-option.js')).requireConfiguredSlot(o.slot, app.settings);
        const registry = await app.registry();

        const dests = o.account
          ? [await registry.get(o.account)]
          : o.slot
            ? await registry.due(o.slot, (await import('../../contracts/slots.js')).slotsByPlan(app.settings))
            : (await registry.list()).filter((d) => d.enabled);
        if (dests.length === 0) {
          out('No destinations to check.');
          return;
        }
        const { checkDestinations } = await import('../../notify/drift.js');
        const results = await checkDestinations(
          { pool: await app.database(), settings: app.settings },
          dests,
          o.probe ? { forceProbe: true } : {},
        );
        for (const r of results) {
          out(`${r.ok ? '✓' : '✗'} ${r.accountId}${r.probed ? '  (external-ID probe ran)' : ''}`);
          for (const c of r.checks.filter((x) => x.status === 'fail')) {
            out(`    ✗ ${c.name}: ${c.detail}`);
            if (c.fix) out(`      fix: ${c.fix}`);
          }
          for (const f of r.failures) out(`    customer told: ${f.reason} — ${f.fix}`);
        }
        // What the checks queued for customers' webhooks, sent now (the sweeper would, within 5 minutes).
        const ids = results.flatMap((r) => r.events ?? []);
        if (ids.length > 0) {
          const { deliverPending } = await import('../../notify/outcome.js');
          const sent = await deliverPending({ pool: await app.database(), settings: app.settings }, { ids });
          out(`webhooks: ${sent.delivered} delivered, ${sent.failed} not yet (the sweeper retries them)`);
        }
        if (results.some((r) => !r.ok)) process.exitCode = 1;
      }),
    );

  program
    .command('webhook')
    .description('Work with dropship webhooks')
    .addHelpText('after', examples('dropship webhook verify --help'))
    .command('verify')
    .description("Verify a webhook's Dropship-Signature against the raw body on stdin (what a receiver does)")
    .requiredOption('--secret <whsec>', 'the signing secret')
    .requiredOption('--header <value>', 'the Dropship-Signature header, e.g. "t=1700000000,v1=5f…"')
    .option('--tolerance <seconds>', 'largest accepted age of the timestamp', String(DEFAULT_TOLERANCE_SECONDS))
    .addHelpText(
      'after',
      examples(`dropship webhook verify --secret whsec_… --header "t=1700000000,v1=5f3a…" < body.json`),
    )
    .action((o: { secret: string; header: string; tolerance: string }) => {
      const body = readFileSync(0);
      const v = verify(o.secret, o.header, body, { toleranceSeconds: Number(o.tolerance) });
      if (v.ok) out(`valid: signed at ${new Date(v.t * 1000).toISOString()}`);
      else {
        process.stderr.write(`invalid: ${v.reason}\n`);
        process.exitCode = 1;
      }
    });

  receipt
    .command('verify-chain <older> <newer> [more...]')
    .description(
      'Prove no delivery was skipped or replaced: each receipt must follow the one before (sequence +1, previous_receipt_sha256)',
    )
    .addHelpText(
      'after',
      examples(
        'dropship receipt verify-chain receipt-41.json receipt-42.json',
        'dropship receipt verify-chain r1.json r2.json r3.json',
      ),
    )
    .action((older: string, newer: string, more: string[] = []) => {
      const files = [older, newer, ...more];
      let bad = false;
      for (let i = 1; i < files.length; i++) {
        const v = verifyLink(readFileSync(files[i - 1]!), readFileSync(files[i]!), {
          older: files[i - 1]!,
          newer: files[i]!,
        });
        if (v.ok) out(`ok: ${v.detail}`);
        else {
          process.stderr.write(`broken: ${v.detail}\n`);
          bad = true;
        }
      }
      if (bad) process.exitCode = 1;
    });
}
