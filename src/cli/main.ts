import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { DropshipError } from '../contracts/errors.js';
import { registerCapacityCommand } from './commands/capacity.js';
import { registerCustomerCommands } from './commands/customer.js';
import { registerDestinationCommands } from './commands/destinations.js';
import { registerDestinationBulkCommands } from './commands/destinations-bulk.js';
import { registerDevCommands } from './commands/dev.js';
import { registerDoctorCommands } from './commands/doctor.js';
import { registerExportCommand } from './commands/export.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerNotifyCommands } from './commands/notify.js';
import { registerReceiptCommands } from './commands/receipt.js';
import { registerRunsCommands } from './commands/runs.js';
import { registerSlotCommands } from './commands/slot.js';
import { printableText } from './format.js';
import { examples } from './usage.js';

/**
 * The `dropship` command line. Every command has --help with an example; errors a person can fix
 * print one clear line and exit 2; failed exports exit 1 with one line per failed table.
 *
 * The commands live one group per file in ./commands/; this file builds the program from them (in
 * the order `dropship --help` lists them) and maps errors to exit codes.
 */
/** `dropship --version`: the package's version and the Node.js running it (package.json pins Node's major). */
function versionLine(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `dropship ${pkg.version} (Node.js ${process.version})`;
}

export function buildProgram(): Command {
  const program = new Command('dropship')
    .description('Deliver every customer’s tables into their own S3 bucket as gzip-compressed Parquet.')
    .version(versionLine(), '-V, --version', 'print the dropship version and the Node.js it runs on')
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
  registerDestinationBulkCommands(destinations);
  registerExportCommand(program);
  registerDoctorCommands(program);
  registerCustomerCommands(program);
  registerRunsCommands(program);
  registerSlotCommands(program);
  registerCapacityCommand(program);
  const receipt = registerReceiptCommands(program);
  registerMigrateCommand(program);
  registerDevCommands(program);
  registerNotifyCommands(program, { destinations, receipt });
  return program;
}

/**
 * The exit code for an error a command threw, or undefined when main() rethrows it (a failure
 * that is nobody's input: Node prints it and exits 1). Commander's --help and --version exit 0,
 * its usage errors (unknown option, bad choice, missing value) 2; a DropshipError that is
 * `badInput` (a person must fix what they gave: UsageError, ConfigError, AccountsError, …) 2.
 */
export function exitCodeFor(e: unknown): number | undefined {
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
  if (e instanceof DropshipError && e.badInput) return 2;
  return undefined;
}

/**
 * `argv` without the help it asks for when it names a command that does not exist (`dropship
 * destinatons --help`, `dropship runs lsit -h`, `dropship help runs lsit`). Commander would print
 * the nearest group's help and exit 0, so a mistyped command looked like success to a script;
 * without the help, commander reports the unknown command with the closest match (exit 2), as it
 * does for `dropship destinatons list`. Any other argv is returned as it is.
 */
export function withoutHelpForUnknownCommand(program: Command, argv: readonly string[]): string[] {
  const args = argv.slice(2);
  const helpCommands = new Set<number>();
  let cmd = program;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--' || cmd.commands.length === 0) break;
    if (a.startsWith('-')) continue; // the groups take no option but --help
    if (a === 'help') {
      helpCommands.add(i); // `help <command>`: the command is named next
      continue;
    }
    const sub = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (!sub) {
      const end = args.indexOf('--');
      const asksHelp = (x: string, j: number) =>
        helpCommands.has(j) || ((end === -1 || j < end) && (x === '--help' || x === '-h'));
      return [...argv.slice(0, 2), ...args.filter((x, j) => !asksHelp(x, j))];
    }
    cmd = sub;
  }
  return [...argv];
}

export async function main(argv = process.argv, program = buildProgram()): Promise<void> {
  try {
    await program.parseAsync(withoutHelpForUnknownCommand(program, argv));
  } catch (e) {
    const code = exitCodeFor(e);
    if (code === undefined) throw e;
    // Commander has printed its own message; bad input gets one clear line.
    if (!(e instanceof CommanderError)) process.stderr.write(`error: ${printableText((e as Error).message)}\n`);
    process.exitCode = code;
  }
}
