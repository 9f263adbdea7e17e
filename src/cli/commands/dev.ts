import type { Command } from 'commander';
import { loadDevTooling } from '../dev-tooling.js';
import { examples, out, UsageError } from '../usage.js';
import { requirePrincipal, withApp } from '../with-app.js';

/**
 * `dropship dev …` and `dropship demo`: the command-line side of the local stack. The stack itself
 * (src/devstack) is development tooling, reached only through loadDevTooling (../dev-tooling.ts);
 * `dev env|provision|apply` talk to a running stack over its loopback admin endpoint (../dev-client.ts).
 */
export function registerDevCommands(program: Command): void {
  const dev = program
    .command('dev')
    .description(
      'Run the local stack (PostgreSQL, S3, STS on 127.0.0.1) and the HTTP API (SigV4) in the foreground with a loopback admin endpoint, and print its environment',
    )
    .option(
      '--world <file>',
      'JSON file declaring customers’ buckets, roles and users (see docs/design/local-stack.md)',
    )
    .option('--fresh', 'start from an empty data folder')
    .option('--demo-data', 'create the demo schema acme (Dreamdata-like tables) if it does not exist')
    .option('--events <n>', 'rows in the demo events table (with --demo-data)', '100000')
    .option('--api-port <port>', 'port of the HTTP API on 127.0.0.1 (default: a free one; printed as DROPSHIP_API_URL)')
    .addHelpText(
      'after',
      examples(
        'dropship dev --demo-data',
        'dropship dev --world src/devstack/world.example.json',
        'DROPSHIP_DEV_DIR=/tmp/dev2 dropship dev --fresh',
      ),
    )
    .action(async (o: { world?: string; fresh?: boolean; demoData?: boolean; events: string; apiPort?: string }) => {
      const apiPort = o.apiPort === undefined ? undefined : Number(o.apiPort);
      if (apiPort !== undefined && !(Number.isInteger(apiPort) && apiPort > 0 && apiPort < 65536))
        throw new UsageError(`--api-port takes a port number (1–65535), not "${o.apiPort}"`);
      const { runDev } = await loadDevTooling('dev');
      await runDev({
        ...(o.world ? { world: o.world } : {}),
        ...(o.fresh ? { fresh: true } : {}),
        ...(o.demoData ? { demoData: true } : {}),
        events: Number(o.events),
        ...(apiPort !== undefined ? { apiPort } : {}),
      });
    });

  dev
    .command('env')
    .description('Print the running dev stack’s environment as shell exports (for eval)')
    .addHelpText('after', examples('eval "$(npx dropship dev env)"'))
    .action(async () => {
      const { devDir, readAdminFile } = await import('../dev-client.js');
      const { REPO_ROOT } = await import('../paths.js');
      const file = readAdminFile(devDir(process.env, REPO_ROOT));
      for (const [k, v] of Object.entries(file.env)) out(`export ${k}='${v.replaceAll("'", "'\\''")}'`);
    });

  const adminOptions = (c: Command): Command =>
    c
      .option(
        '--admin-url <url>',
        'the admin endpoint `dropship dev` printed (default: read from .dropship/dev/admin.json)',
      )
      .option('--admin-token <token>', 'the admin token `dropship dev` printed (default: read from admin.json)');

  adminOptions(
    dev
      .command('provision')
      .description(
        'Create in the running dev stack the customer’s side of a registered destination from its setup kit (`destinations kit`): its bucket, the role with the policies `dropship policy` prints, and a read-only user (prints its keys)',
      )
      .requiredOption('--account <id>', 'the registered account'),
  )
    .addHelpText(
      'after',
      examples(
        'npx dropship dev provision --account acme',
        'npx dropship dev provision --account acme | tee .dropship/acme-loader.env',
      ),
    )
    .action(async (o: { account: string; adminUrl?: string; adminToken?: string }) => {
      const { adminTarget, applyWorld, customerWorld } = await import('../dev-client.js');
      const { REPO_ROOT } = await import('../paths.js');
      const target = adminTarget(o, process.env, REPO_ROOT);
      await withApp(async (app) => {
        const dest = await (await app.registry()).get(o.account);
        requirePrincipal(app);
        const c = customerWorld(dest, app.settings);
        const res = await applyWorld(target, c.world);
        const user = res.users[0]!;
        out(`# created in the dev stack, AWS account ${c.awsAccountId}:`);
        out(`#   bucket ${dest.bucket} (${dest.region})`);
        out(
          `#   role   ${dest.roleArn}: from the setup kit (dropship destinations kit ${dest.accountId}): trust.json and write.json as \`dropship policy --account ${dest.accountId}\` prints them`,
        );
        out(`#   user   ${user.arn}: read-only (reader.json), for the customer's loader — its keys:`);
        out(`AWS_ACCESS_KEY_ID=${user.accessKeyId} AWS_SECRET_ACCESS_KEY=${user.secretAccessKey}`);
      });
    });

  adminOptions(
    dev
      .command('apply <world.json>')
      .description('Apply a world file (buckets, roles, users) to the running dev stack; prints the users’ keys'),
  )
    .addHelpText('after', examples('npx dropship dev apply src/devstack/world.example.json'))
    .action(async (file: string, o: { adminUrl?: string; adminToken?: string }) => {
      const { readFileSync } = await import('node:fs');
      const { adminTarget, applyWorld } = await import('../dev-client.js');
      const { REPO_ROOT } = await import('../paths.js');
      (await import('../../config/settings.js')).loadSettings();
      let world: unknown;
      try {
        world = JSON.parse(readFileSync(file, 'utf8'));
      } catch (e) {
        throw new UsageError(`${file}: not readable JSON (${(e as Error).message})`);
      }
      const res = await applyWorld(adminTarget(o, process.env, REPO_ROOT), world);
      out(`# applied ${file}: ${res.buckets} bucket(s), ${res.roles} role(s), ${res.users.length} user(s)`);
      for (const u of res.users) {
        out(`# user ${u.arn}: AWS_ACCESS_KEY_ID=${u.accessKeyId} AWS_SECRET_ACCESS_KEY=${u.secretAccessKey}`);
      }
    });

  program
    .command('demo')
    .description('What `npm start` runs: local stack, two demo customers, a real export, a summary')
    .option('--events <n>', 'rows in each demo events table', '300000')
    .addHelpText('after', examples('npm start', 'dropship demo --events 1000000'))
    .action(async (o: { events: string }) => {
      const { runDemo } = await loadDevTooling('demo');
      process.exitCode = await runDemo({ events: Number(o.events) });
    });
}
