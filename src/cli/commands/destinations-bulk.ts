import { type Command, Option } from 'commander';
import { printable } from '../format.js';
import { examples, out, UsageError } from '../usage.js';
import { withApp } from '../with-app.js';

/** The kit's formats (kept here, zod-free and SDK-free, so `--help` loads nothing but commander). */
export const KIT_FORMATS = ['cloudformation', 'terraform', 'json'] as const;

/**
 * `dropship destinations kit|import|export`: the customer's setup kit (src/destinations/s3/kit.ts) and
 * bulk registration (src/accounts/bulk.ts). Modules load inside the actions (`--help` loads none).
 */
export function registerDestinationBulkCommands(destinations: Command): void {
  destinations
    .command('kit <account>')
    .description(
      'Print the customer’s setup kit: a CloudFormation template (with its quick-create link), a Terraform module or the raw documents — the same IAM documents `dropship policy` prints',
    )
    .addOption(new Option('--format <format>', 'what to print').choices(KIT_FORMATS).default('cloudformation'))
    .option('--link', 'cloudformation: print only the quick-create link (needs DROPSHIP_KIT_TEMPLATE_BASE_URL)')
    .addHelpText(
      'after',
      examples(
        'dropship destinations kit acme > dropship-acme.template.json   # the link and the upload command go to stderr',
        'dropship destinations kit acme --format terraform > dropship-acme/main.tf',
        'dropship destinations kit acme --format json',
        'DROPSHIP_KIT_TEMPLATE_BASE_URL=https://kits.s3.eu-west-1.amazonaws.com/templates dropship destinations kit acme --link',
      ),
    )
    .action((account: string, o: { format: (typeof KIT_FORMATS)[number]; link?: boolean }) =>
      withApp(async (app) => {
        const { setupKit } = await import('../../destinations/s3/kit.js');
        const dest = await (await app.registry()).get(account);
        if (o.link && o.format !== 'cloudformation') throw new UsageError('--link is for --format cloudformation');
        const kit = setupKit(dest, app.settings, o.format);
        if (o.link) {
          if (!kit.quickCreateUrl) throw new UsageError(kit.instructions.join('\n'));
          out(kit.quickCreateUrl);
          return;
        }
        process.stdout.write(kit.body);
        process.stderr.write(`# ${kit.fileName}\n${kit.instructions.map((l) => `# ${l}`).join('\n')}\n`);
      }),
    );

  destinations
    .command('import <file>')
    .description(
      'Register destinations from a JSONL file (one per line, the fields of `destinations add`; - reads stdin): each line all-or-nothing, one result per line; a line equal to the registered destination is unchanged, one that differs is refused unless --update',
    )
    .option('--update', 'apply lines that differ from a registered destination (as `destinations update` would)')
    .addHelpText(
      'after',
      `${examples(
        'dropship destinations import destinations.jsonl',
        'dropship destinations export > all.jsonl && dropship destinations import all.jsonl   # every line: unchanged',
        'dropship destinations import changed.jsonl --update',
      )}
A line (the fields of destinations add; defaults as there):
  {"accountId":"acme","plan":"paid","bucket":"acme-data","prefix":"dropship","region":"eu-west-1",
   "roleArn":"arn:aws:iam::123456789012:role/dropship-export","sourceSchema":"acme"}
Results on stdout, one per line: <line>\\t<account>\\t<created|unchanged|updated|error>\\t<fields or problems>.
Exit 0 when every line succeeded, 1 when any failed (the others are registered), 2 for an unusable file.
Webhooks are not part of a line (their secret is printed once): set them with destinations update --webhook-url.
`,
    )
    .action(async (file: string, o: { update?: boolean }) => {
      const { createReadStream, openSync, fstatSync, closeSync } = await import('node:fs');
      const { importDestinations } = await import('../../accounts/bulk.js');
      let input: NodeJS.ReadableStream = process.stdin;
      if (file !== '-') {
        // An unreadable file is bad input (exit 2), found before anything is registered.
        let fd: number;
        try {
          fd = openSync(file, 'r');
        } catch (e) {
          throw new UsageError(`${file}: ${(e as Error).message}`);
        }
        if (!fstatSync(fd).isFile()) {
          closeSync(fd);
          throw new UsageError(`${file}: not a file`);
        }
        input = createReadStream('', { fd });
      }
      await withApp(async (app) => {
        const registry = await app.registry();
        const started = performance.now();
        // One line per result, its fields tab-separated: no field may hold a tab or a line break of its own (an account
        // id is shown escaped unless valid; a problem can quote the line, as JSON.parse's message does).
        const summary = await importDestinations(registry, input, { update: o.update === true }, (r) =>
          out(
            `${r.line}\t${printable(r.accountId ?? '-')}\t${r.outcome}${r.details.length ? `\t${printable(r.details.join('; '))}` : ''}`,
          ),
        );
        process.stderr.write(
          `# ${summary.lines} line(s): ${summary.created} created, ${summary.unchanged} unchanged, ${summary.updated} updated, ${summary.failed} failed (${((performance.now() - started) / 1000).toFixed(1)} s)\n`,
        );
        if (summary.failed > 0) process.exitCode = 1;
      });
    });

  destinations
    .command('export')
    .description(
      'Print every destination as JSONL, the fields `destinations import` accepts (no webhook secret, no external ID)',
    )
    .addHelpText(
      'after',
      examples('dropship destinations export > destinations.jsonl', 'dropship destinations export | wc -l'),
    )
    .action(() =>
      withApp(async (app) => {
        const { exportDestinations } = await import('../../accounts/bulk.js');
        for await (const line of exportDestinations(await app.registry())) out(line);
      }),
    );
}
