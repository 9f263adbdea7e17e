import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LocalStack, REPO_ROOT } from '../../test/stack/stack.js';

/**
 * `dropship dev`: the local stack in the foreground. PostgreSQL data persists in .dropship/dev;
 * buckets, roles and users are declared in a world file and applied at every start.
 */
export async function runDev(opts: { world?: string; fresh?: boolean }): Promise<void> {
  const dataDir = join(REPO_ROOT, '.dropship', 'dev');
  if (opts.fresh) rmSync(dataDir, { recursive: true, force: true });
  const stack = await LocalStack.start({ dataDir, keep: true });
  const print = (s: string): void => {
    process.stdout.write(`${s}\n`);
  };
  try {
    if (opts.world) {
      const users = await stack.applyWorld(JSON.parse(readFileSync(opts.world, 'utf8')));
      for (const u of users.values()) {
        print(`# user ${u.arn}: AWS_ACCESS_KEY_ID=${u.accessKeyId} AWS_SECRET_ACCESS_KEY=${u.secretAccessKey}`);
      }
    }
    print('# dropship local stack is running. In another shell:');
    for (const [k, v] of Object.entries({ ...stack.env(), DROPSHIP_S3_FORCE_PATH_STYLE: 'true' }))
      print(`export ${k}=${v}`);
    print('# then e.g.: npx dropship destinations list');
    print('# Ctrl-C stops everything.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  } finally {
    await stack.stop();
    print('# local stack stopped.');
  }
}
