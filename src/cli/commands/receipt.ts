import { type Command, Option } from 'commander';
import { examples, out, UsageError } from '../usage.js';

/**
 * `dropship receipt …`: warehouse loading SQL from a receipt and the receipt contract check.
 * Returns the group, which the notification commands extend (`verify-chain`, ./notify.ts).
 */
export function registerReceiptCommands(program: Command): Command {
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
        const { warehouseSql } = await import('../../receipt/warehouse-sql.js');
        const { changesSql } = await import('../../receipt/merge-sql.js');
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
        'aws s3 cp s3://my-bucket/dropship/receipt.json - | dropship receipt validate - --prefix dropship',
      ),
    )
    .option('--prefix <path>', 'the prefix the receipt was published under: every listed key must be under it')
    .action(async (file: string, o: { prefix?: string }) => {
      const { readFileSync } = await import('node:fs');
      const { validateReceipt } = await import('../../receipt/validate.js');
      let value: unknown;
      try {
        value = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'));
      } catch (e) {
        throw new UsageError(`${file}: not readable JSON (${(e as Error).message})`);
      }
      const violations = validateReceipt(value, o.prefix === undefined ? {} : { prefix: o.prefix });
      if (violations.length === 0) {
        out(`${file}: valid receipt`);
        return;
      }
      for (const v of violations) process.stderr.write(`${file}: ${v.path} ${v.message}\n`);
      process.exitCode = 1;
    });
  return receipt;
}
