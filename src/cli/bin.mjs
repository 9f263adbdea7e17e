#!/usr/bin/env node
// Entry point of the `dropship` command: TypeScript sources run through tsx's loader.
import { register } from 'tsx/esm/api';

// The SDK is pinned on purpose (its later releases need Node 22; Lambda runs nodejs22.x):
// its Node 20 support notice is known and would only clutter the output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
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
