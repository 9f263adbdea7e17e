import type { Command } from 'commander';
import { isWholeSchema } from '../../contracts/selection.js';
import { noteDoctorReport } from '../../notify/drift.js';
import { selectionReport } from '../../source/select.js';
import { requirePrincipal, withApp } from '../app.js';
import { examples, out } from '../usage.js';

/** `dropship doctor` (check a destination, with the fix for each failure) and `dropship policy` (the documents to paste). */
export function registerDoctorCommands(program: Command): void {
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
      const { doctor } = await import('../../aws/doctor.js');
      await withApp(async (app) => {
        const dest = await (await app.registry()).get(o.account);
        const trust = o.trustPolicy ? JSON.parse(readFileSync(o.trustPolicy, 'utf8')) : undefined;
        const report = await doctor(dest, {
          settings: app.settings,
          ...(app.settings.DROPSHIP_PRINCIPAL_ARN ? { principalArn: app.settings.DROPSHIP_PRINCIPAL_ARN } : {}),
          ...(trust !== undefined ? { trustPolicy: trust } : {}),
        });
        await noteDoctorReport(await app.database(), report, dest); // counts as the day's external-ID probe
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
      });
    });

  program
    .command('policy')
    .description('Print the IAM and lifecycle documents a customer creates, ready to paste, with the AWS CLI commands')
    .requiredOption('--account <id>', 'the account')
    .option('--reader', "also a least-privilege read policy for the customer's own loader")
    .addHelpText('after', examples('dropship policy --account acme', 'dropship policy --account acme --reader'))
    .action(async (o: { account: string; reader?: boolean }) => {
      const { policyDocuments } = await import('../../accounts/policies.js');
      await withApp(async (app) => {
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
      });
    });
}
