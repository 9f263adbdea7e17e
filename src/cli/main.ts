import { Command, CommanderError } from 'commander';
import { AccountsError } from '../accounts/registry.js';
import { ConfigError } from '../config/settings.js';
import { WebhookError } from '../notify/webhook.js';
import { registerCustomerCommands } from './commands/customer.js';
import { registerDestinationCommands } from './commands/destinations.js';
import { registerDevCommands } from './commands/dev.js';
import { registerDoctorCommands } from './commands/doctor.js';
import { registerExportCommand } from './commands/export.js';
import { NotifyUsageError, registerNotifyCommands } from './commands/notify.js';
import { registerReceiptCommands } from './commands/receipt.js';
import { registerRunsCommands } from './commands/runs.js';
import { examples, UsageError } from './usage.js';

/**
 * The `dropship` command line. Every command has --help with an example; errors a person can fix
 * print one clear line and exit 2; failed exports exit 1 with one line per failed table.
 *
 * The commands live one group per file in ./commands/; this file builds the program from them (in
 * the order `dropship --help` lists them) and maps errors to exit codes.
 */
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

  const destinations = registerDestinationCommands(program);
  registerExportCommand(program);
  registerDoctorCommands(program);
  registerCustomerCommands(program);
  registerRunsCommands(program);
  const receipt = registerReceiptCommands(program);
  registerDevCommands(program);
  registerNotifyCommands(program, { destinations, receipt });
  return program;
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
