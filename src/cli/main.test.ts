import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AccountsError, DestinationNotFound, InvalidDestination } from '../accounts/registry.js';
import { ChangeSetError } from '../changes/changes.js';
import { ConfigError } from '../config/settings.js';
import type { DropshipError } from '../contracts/errors.js';
import { InspectError } from '../customer/inspect.js';
import { LoadError } from '../customer/loader.js';
import { AwsError, DestinationAccessError } from '../destinations/s3/clients.js';
import { DevError } from '../devstack/dev.js';
import { WebhookError } from '../notify/webhook.js';
import { MappingError, SourceError } from '../pipeline/source/errors.js';
import { TableExportError } from '../pipeline/table.js';
import { ReceiptError } from '../receipt/receipt.js';
import { RunError } from '../run/drivers/in-process.js';
import { OwnerLost } from '../run/liveness/owner.js';
import { LedgerError, RunInProgress, SlotAlreadyRun } from '../store/ledger/ledger.js';
import { SchemaVersionError } from '../store/migrations.js';
import { NotifyUsageError } from './commands/notify.js';
import { DevClientError } from './dev-client.js';
import { DevToolingMissing } from './dev-tooling.js';
import { buildProgram, exitCodeFor, main } from './main.js';
import { UsageError } from './usage.js';

/** Every error a person must fix: exactly these exit 2 (as before the error family could say so). */
const badInput: DropshipError[] = [
  new UsageError('give exactly one of --account <id> or --due --slot <HH:MM>'),
  new ConfigError('DROPSHIP_SHARD_TARGET_BYTE is not a dropship setting'),
  new AccountsError('no such account'),
  new DestinationNotFound('shop'),
  new InvalidDestination(['bucket: bucket names use lowercase letters']),
  new DevClientError('no dev stack is running'),
  new DevError('the dev stack cannot start'),
  new InspectError('not a receipt'),
  new LoadError('not an s3:// URI'),
  new DevToolingMissing('dev'),
  new NotifyUsageError('--url must be https'),
  new WebhookError('the webhook refused'),
  new SchemaVersionError('run dropship migrate'),
];

/** Every other error dropship throws: main() rethrows them (exit 1 with the stack). */
const notBadInput: Error[] = [
  new ReceiptError('receipt write failed'),
  new AwsError('throttled'),
  new DestinationAccessError('access denied'),
  new SourceError('connection reset'),
  new MappingError('NaN has no exact Parquet form'),
  new ChangeSetError('state missing'),
  new TableExportError('orders', 'failed'),
  new RunError('1 table failed', [{ table: 'orders', message: 'failed' }]),
  new LedgerError('ledger unavailable'),
  new RunInProgress('shop'),
  new SlotAlreadyRun('shop', '04:00', '2026-11-23'),
  new OwnerLost('lost the run'),
  new Error('something internal'),
  new TypeError('x is undefined'),
];

/** A program built as buildProgram builds it (exitOverride before its commands), whose one command throws `e`. */
function programThrowing(e: unknown): Command {
  const program = new Command('dropship').exitOverride();
  program.command('boom').action(() => {
    throw e;
  });
  return program;
}

describe('main: exit codes', () => {
  const before = process.exitCode;
  afterEach(() => {
    process.exitCode = before;
    vi.restoreAllMocks();
  });

  it('exits 2 with one line for each error a person must fix', async () => {
    for (const e of badInput) {
      expect(e.badInput, e.name).toBe(true);
      expect(exitCodeFor(e), e.name).toBe(2);
      const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      process.exitCode = undefined;
      await main(['node', 'dropship', 'boom'], programThrowing(e));
      expect(process.exitCode, e.name).toBe(2);
      expect(stderr).toHaveBeenCalledWith(`error: ${e.message}\n`);
      stderr.mockRestore();
    }
  });

  it('rethrows every other error, retryable or internal, and sets no exit code', async () => {
    for (const e of notBadInput) {
      expect(exitCodeFor(e), e.name).toBeUndefined();
      process.exitCode = undefined;
      await expect(main(['node', 'dropship', 'boom'], programThrowing(e))).rejects.toBe(e);
      expect(process.exitCode, e.name).toBeUndefined();
    }
    expect(new SourceError('connection reset').retryable).toBe(true);
  });

  it('a wrapper is asked itself, not its cause: bad input wrapped in an internal error is rethrown', async () => {
    const e = new Error('while loading', { cause: new UsageError('bad flag') });
    await expect(main(['node', 'dropship', 'boom'], programThrowing(e))).rejects.toBe(e);
  });

  it("commander's --help exits 0 and its usage errors exit 2", async () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    process.exitCode = undefined;
    await main(['node', 'dropship', '--help'], programThrowing(new Error('unused')));
    expect(process.exitCode).toBe(0);
    process.exitCode = undefined;
    await main(['node', 'dropship', 'boom', '--no-such-flag'], programThrowing(new Error('unused')));
    expect(process.exitCode).toBe(2);
    expect(out).toHaveBeenCalled();
    expect(err).toHaveBeenCalled();
  });
});

describe('main: an unknown command', () => {
  const before = process.exitCode;
  afterEach(() => {
    process.exitCode = before;
    vi.restoreAllMocks();
  });

  /** Runs the real program on `args`; what it wrote to stdout and stderr, and its exit code. */
  async function run(
    ...args: string[]
  ): Promise<{ code: number | string | undefined; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      stdout += String(s);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
      stderr += String(s);
      return true;
    });
    process.exitCode = undefined;
    await main(['node', 'dropship', ...args], buildProgram());
    vi.restoreAllMocks();
    return { code: process.exitCode, stdout, stderr };
  }

  it.each([
    [['destinatons', 'list'], 'destinatons', 'destinations'],
    [['destinatons', '--help'], 'destinatons', 'destinations'],
    [['destinatons', 'list', '--help'], 'destinatons', 'destinations'],
    [['--help', 'destinatons'], 'destinatons', 'destinations'],
    [['help', 'destinatons'], 'destinatons', 'destinations'],
    [['runs', 'lsit'], 'lsit', 'list'],
    [['runs', 'lsit', '--help'], 'lsit', 'list'],
    [['runs', 'lsit', '-h'], 'lsit', 'list'],
    [['runs', 'help', 'lsit'], 'lsit', 'list'],
    [['help', 'runs', 'lsit'], 'lsit', 'list'],
    [['exprot', '--account', 'acme', '--help'], 'exprot', 'export'],
  ])(
    'dropship %j exits 2 with "unknown command" and the closest match, and prints no help',
    async (args, name, match) => {
      const r = await run(...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`error: unknown command '${name}'`);
      expect(r.stderr).toContain(`(Did you mean ${match}?)`);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toContain('Usage:');
    },
  );

  it('an unknown command with nothing close still exits 2, without a suggestion', async () => {
    const r = await run('zzzzzz', '--help');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: unknown command 'zzzzzz'");
    expect(r.stderr).not.toContain('Did you mean');
  });

  it.each([
    [['--help']],
    [['destinations', '--help']],
    [['runs', 'list', '--help']],
    [['help', 'runs']],
    [['runs', 'help', 'list']],
  ])('dropship %j still prints its help and exits 0', async (args) => {
    const r = await run(...args);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: dropship/);
    expect(r.stderr).toBe('');
  });
});
