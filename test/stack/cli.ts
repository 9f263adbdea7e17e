import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { type LocalStack, REPO_ROOT } from './stack.js';

/**
 * The part of this process's environment that belongs to the machine, not to dropship: PATH, HOME,
 * and the clock and time zone (TZ; libfaketime's LD_PRELOAD/FAKETIME under `npm run test:clock`), so
 * a child process lives in the same time as the test that started it.
 */
export function machineEnv(): Record<string, string> {
  const keys = ['PATH', 'HOME', 'TZ', 'LD_PRELOAD', 'FAKETIME', 'DONT_FAKE_MONOTONIC', 'FAKETIME_DONT_RESET'];
  return Object.fromEntries(keys.flatMap((k) => (process.env[k] === undefined ? [] : [[k, process.env[k]!]])));
}

/**
 * Runs the `dropship` command as a person would, in a child process pointed at the local stack
 * (its standard AWS and database environment, path-style S3), with nothing else of this process's
 * environment. `env` adds or overrides settings; `stdin` is piped in.
 */
export function runDropship(
  stack: LocalStack,
  args: string[],
  opts: { env?: Record<string, string>; stdin?: Buffer | string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [join(REPO_ROOT, 'src/cli/bin.mjs'), ...args],
      {
        env: {
          ...machineEnv(),
          ...stack.env(),
          DROPSHIP_S3_FORCE_PATH_STYLE: 'true',
          ...opts.env,
        },
        timeout: opts.timeoutMs ?? 60_000,
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(opts.stdin ?? '');
  });
}
