#!/usr/bin/env node
// Entry point of the `dropship` command: TypeScript sources run through tsx's loader.
import { register } from 'tsx/esm/api';

// Output piped into a reader that stops early (`dropship runs list | head`): end quietly, as Unix tools do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}
register();
const { main } = await import('./main.ts');
await main();
