import { type Command, Option } from 'commander';
import type { Receipt } from '../../contracts/receipt.js';
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
    .option(
      '--prefix <path>',
      "the prefix the receipt was published under ('' for the bucket root): every key must be under it",
    )
    .option('--iam-role <arn>', 'Redshift: the role Redshift reads the bucket with')
    .option('--stage <name>', 'Snowflake: the external stage on s3://bucket/prefix/')
    .option(
      '--manifest-dir <dir>',
      'Redshift/Athena: a local folder to write the manifests to (one per table, listing exactly the receipt’s files); upload them to --manifest-url',
    )
    .option(
      '--manifest-url <s3-folder>',
      'Redshift/Athena: the S3 folder you upload the manifests to (s3://bucket/path)',
    )
    .option('--changes', 'Redshift/Snowflake: MERGE statements applying the change sets instead of full loads')
    .addHelpText(
      'after',
      examples(
        'dropship receipt sql receipt.json --dialect redshift --bucket acme-data --prefix dropship --iam-role arn:aws:iam::123456789012:role/redshift --manifest-dir ./manifests --manifest-url s3://acme-etl/dropship-manifests',
        'dropship receipt sql receipt.json --dialect snowflake --bucket acme-data --prefix dropship --stage acme_stage --changes',
      ),
    )
    .action(
      async (
        file: string,
        o: {
          dialect: 'redshift' | 'snowflake' | 'athena';
          bucket: string;
          prefix?: string;
          iamRole?: string;
          stage?: string;
          changes?: boolean;
          manifestDir?: string;
          manifestUrl?: string;
        },
      ) => {
        const { mkdirSync, writeFileSync } = await import('node:fs');
        const { dirname, join, relative, resolve, isAbsolute } = await import('node:path');
        const { validateReceipt } = await import('../../receipt/validate.js');
        const { caseFolded, loadManifests, warehouseSql } = await import('../../customer/warehouse-sql.js');
        const { changeManifests, changesSql } = await import('../../customer/merge-sql.js');
        const { MAX_RECEIPT_BYTES, parseReceiptJson } = await import('../../receipt/parse.js');
        const { readJsonFile } = await import('../json-file.js');
        // Within a receipt's size and depth; a file that is not JSON is named with where it breaks, never quoted.
        // Shaped as a receipt only once validated below (refuseInvalid): until then nothing reads it.
        const value = readJsonFile('', file, { maxBytes: MAX_RECEIPT_BYTES, parse: parseReceiptJson }) as Receipt;
        // Only a valid receipt, every key under --prefix, becomes SQL or manifests (a tampered one is refused), once
        // the options are known to be complete (their errors come first).
        const refuseInvalid = (): void => {
          if (o.prefix === undefined)
            throw new UsageError(
              "give --prefix <path>, the prefix the receipt was published under (--prefix '' for the bucket root): only keys under it are loaded",
            );
          const violations = validateReceipt(value, { prefix: o.prefix });
          if (violations.length > 0)
            throw new UsageError(
              `${file} is not a valid receipt published under --prefix ${JSON.stringify(o.prefix)}:\n  ${violations.map((v) => `${v.path} ${v.message}`).join('\n  ')}`,
            );
          const folded = caseFolded(value, o.dialect);
          if (folded.length > 0)
            throw new UsageError(
              `${o.dialect} folds the case of names, and this receipt has names that would become one:\n  ${folded.join('\n  ')}`,
            );
        };
        if (o.changes && o.dialect === 'athena')
          throw new UsageError('--changes: Athena tables are external (read in place); use redshift or snowflake');
        const target = {
          bucket: o.bucket,
          prefix: (o.prefix ?? '').replace(/^\/+|\/+$/g, ''),
          ...(o.iamRole ? { redshiftIamRole: o.iamRole } : {}),
          ...(o.stage ? { snowflakeStage: o.stage } : {}),
          ...(o.manifestUrl ? { manifestUrl: o.manifestUrl } : {}),
        };
        // Redshift and Athena load exactly the receipt's files through manifests the user uploads
        // (dropship writes nothing into the customer's bucket outside its own folders).
        if (o.dialect !== 'snowflake') {
          if (!o.manifestDir || !o.manifestUrl)
            throw new UsageError(
              `--dialect ${o.dialect} loads exactly the receipt's files through manifests: give --manifest-dir <local folder> (written there) and --manifest-url <s3 folder> (where you upload them)`,
            );
          if (!/^s3:\/\/[^/]+/.test(o.manifestUrl))
            throw new UsageError(`--manifest-url: expected s3://bucket/path, got ${JSON.stringify(o.manifestUrl)}`);
          refuseInvalid();
          const manifests =
            o.changes && o.dialect === 'redshift'
              ? changeManifests(value, target)
              : loadManifests(value, o.dialect, target);
          for (const m of manifests) {
            const path = join(o.manifestDir, m.name);
            const inside = relative(resolve(o.manifestDir), resolve(path));
            if (inside.startsWith('..') || isAbsolute(inside))
              throw new UsageError(`manifest ${JSON.stringify(m.name)} would be written outside --manifest-dir`);
            mkdirSync(dirname(path), { recursive: true });
            writeFileSync(path, m.body);
          }
          process.stderr.write(
            `wrote ${manifests.length} manifest(s) to ${o.manifestDir}; upload them before running the SQL: aws s3 cp --recursive ${o.manifestDir} ${o.manifestUrl.replace(/\/+$/, '')}/\n`,
          );
        }
        refuseInvalid();
        process.stdout.write(
          o.changes && o.dialect !== 'athena'
            ? changesSql(value, o.dialect, target)
            : warehouseSql(value, o.dialect, target),
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
      const { MAX_RECEIPT_BYTES, parseReceiptJson, validateReceipt } = await import('../../receipt/validate.js');
      const { readJsonFile } = await import('../json-file.js');
      // JSON.parse's own message quotes the file's text (a file named by mistake may hold a secret): where, never what.
      const value = readJsonFile('', file, { maxBytes: MAX_RECEIPT_BYTES, parse: parseReceiptJson });
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
