import type { Command } from 'commander';
import type { Destination } from '../../accounts/destination.js';
import {
  DUMP_EXPIRY_DAYS,
  type LifecycleConfiguration,
  lifecycleMergeJq,
  runFoldersPrefix,
} from '../../destinations/s3/bucket-lifecycle.js';
import { readJsonFile } from '../json-file.js';
import { examples, out } from '../usage.js';
import { requirePrincipal, withApp } from '../with-app.js';

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
      // Read before anything connects: a file that is missing or not JSON is the person's to fix (exit 2), told
      // without a byte of its content (src/cli/json-file.ts).
      const trust = o.trustPolicy !== undefined ? readJsonFile('--trust-policy', o.trustPolicy) : undefined;
      const { diagnose } = await import('../../schedule/checks.js');
      await withApp(async (app) => {
        // The policy is checked against the principal it must trust: without one it was skipped without a word.
        if (trust !== undefined) requirePrincipal(app);
        const dest = await (await app.registry()).get(o.account);
        const { report, selection } = await diagnose(dest, {
          settings: app.settings,
          pool: await app.database(),
          sourceUrl: app.sourceUrl,
          ...(trust !== undefined ? { trustPolicy: trust } : {}),
        });
        for (const c of report.checks) {
          out(`${{ pass: '✓', fail: '✗', warn: '!' }[c.status]} ${c.name}: ${c.detail}`);
          if (c.fix && c.status !== 'pass') out(`    fix: ${c.fix}`);
        }
        out(`${selection.problems.length ? '✗' : '✓'} selection: ${selection.summary}`);
        for (const p of selection.problems) out(`    fix: ${p}`);
        if (selection.problems.length) process.exitCode = 1;
        const busy = selection.problems.length > 0 && selection.problems.every((p) => p.startsWith('source busy:'));
        out(
          report.ok && !selection.problems.length
            ? '\nall checks passed'
            : report.ok && busy
              ? '\nthe source was busy, so the selection was not checked: run the doctor again once the lock is released'
              : report.ok
                ? '\nthe source schema has tables a run cannot deliver, or the selection no longer fits it; runs fail until it is fixed'
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
      const { policyDocuments } = await import('../../destinations/s3/policies.js');
      const { createRoleCommand, roleNameAndPath } = await import('../../destinations/s3/kit.js');
      await withApp(async (app) => {
        const dest = await (await app.registry()).get(o.account);
        const principal = requirePrincipal(app);
        const docs = policyDocuments(dest, principal);
        const role = roleNameAndPath(dest.roleArn).name;
        out("# trust.json — the role trusts dropship only with this account's external ID");
        out(JSON.stringify(docs.trust, null, 2));
        out(
          "\n# write.json — the role may write dropship's keys under the prefix (run folders, receipt.json, status.json, the doctor's probes), nothing else",
        );
        out(JSON.stringify(docs.writer, null, 2));
        if (o.reader) {
          out("\n# reader.json — least privilege for the customer's own loader");
          out(JSON.stringify(docs.reader, null, 2));
        }
        out('\n# AWS CLI');
        // The role the kit declares (src/destinations/s3/kit.ts): the registered ARN's path, the longest session.
        out(createRoleCommand(dest.roleArn, app.settings));
        out(
          `aws iam put-role-policy --role-name ${role} --policy-name dropship-write --policy-document file://write.json`,
        );
        for (const line of lifecycleLines(dest, docs.lifecycle)) out(line);
        if (o.reader)
          out(
            'aws iam put-user-policy --user-name <your-loader> --policy-name dropship-read --policy-document file://reader.json',
          );
      });
    });
}

/**
 * The lifecycle part of `dropship policy`: the configuration and the commands that MERGE it into the
 * bucket's existing rules (put-bucket-lifecycle-configuration replaces the whole configuration), or,
 * for a destination at the bucket root, why there is none.
 */
export function lifecycleLines(
  dest: Pick<Destination, 'accountId' | 'bucket' | 'prefix'>,
  lc: LifecycleConfiguration,
): string[] {
  const bucket = dest.bucket;
  const head =
    lc.Rules.length === 0
      ? [
          '\n# lifecycle.json — no rule recommended: this destination writes at the bucket root, where no lifecycle rule',
          "# can tell dropship's run folders from the bucket's other objects. Give it a prefix to get rules that expire old",
          `# dumps (dropship destinations update ${dest.accountId} --prefix dropship). The merge below only removes the`,
          "# bucket-wide rules of dropship's earlier recommendation, if the bucket has them.",
        ]
      : [
          `\n# lifecycle.json — expire dumps after ${DUMP_EXPIRY_DAYS} days and abort incomplete uploads after 1 day, only under`,
          `# s3://${bucket}/${runFoldersPrefix(dest)}… (the run folders): receipt.json, status.json and the rest of the bucket are untouched.`,
          `# The prefix is dropship's: an object of your own under s3://${bucket}/${runFoldersPrefix(dest)}… expires too. The rules go by`,
          `# age: with no delivery for ${DUMP_EXPIRY_DAYS} days, the files the current receipt.json names expire as well.`,
        ];
  return [
    ...head,
    JSON.stringify(lc, null, 2),
    "\n# put-bucket-lifecycle-configuration REPLACES the bucket's rules: merge with the existing ones first (needs jq).",
    "# Paste the block whole: it changes nothing unless it read the bucket's rules (or the bucket has none).",
    '(',
    '  set -eu',
    `  if ! aws s3api get-bucket-lifecycle-configuration --bucket ${bucket} --output json > current.json 2> current.err; then`,
    `    grep -q NoSuchLifecycleConfiguration current.err || { cat current.err >&2; echo "could not read the lifecycle rules of ${bucket}: nothing changed" >&2; exit 1; }`,
    `    echo '{"Rules":[]}' > current.json`,
    '  fi',
    `  jq --slurpfile ours lifecycle.json '${lifecycleMergeJq(lc)}' current.json > merged.json`,
    `  if jq -e '.Rules | length > 0' merged.json > /dev/null; then`,
    `    tdmos=$(jq -r '.TransitionDefaultMinimumObjectSize // empty' current.json)`,
    `    aws s3api put-bucket-lifecycle-configuration --bucket ${bucket} --lifecycle-configuration file://merged.json \${tdmos:+--transition-default-minimum-object-size "$tdmos"}`,
    `  elif jq -e '.Rules | length > 0' current.json > /dev/null; then`,
    `    aws s3api delete-bucket-lifecycle --bucket ${bucket} # its only rules were dropship's earlier bucket-wide ones`,
    '  fi',
    ')',
  ];
}
