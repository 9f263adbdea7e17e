import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { type LocalStack, REPO_ROOT } from '../../src/devstack/stack.js';
import { machineEnv } from './machine-env.js';

/** What one `dropship` command left behind: its exit code and its two output streams. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Settings added to (or overriding) the stack's environment. */
  env?: Record<string, string>;
  /** Piped to the command's standard input (nothing by default: stdin is closed at once). */
  stdin?: Buffer | string;
  /** Killed after this long (default 60 s); a killed command reports a non-zero code. */
  timeoutMs?: number;
}

/**
 * Runs the `dropship` command as a person would, in a child process pointed at the local stack
 * (its standard AWS and database environment, path-style S3), with nothing else of this process's
 * environment than the machine's (PATH, HOME, the clock). `env` adds or overrides settings.
 * A file that always adds the same settings binds them once:
 *   const cli = (args: string[]) => dropship(h.stack, args, { env: { DROPSHIP_LOG_LEVEL: 'silent' } });
 */
export function dropship(stack: LocalStack, args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return dropshipAt(REPO_ROOT, args, {
    ...opts,
    env: { ...machineEnv(), ...stack.env(), DROPSHIP_S3_FORCE_PATH_STYLE: 'true', ...opts.env },
  });
}

/**
 * Runs `<root>/src/cli/bin.mjs` in `root` (an install of dropship somewhere else, as the
 * production-install test makes) with exactly the environment given: no stack, nothing inherited.
 */
export function dropshipAt(root: string, args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [join(root, 'src/cli/bin.mjs'), ...args],
      { cwd: root, env: opts.env ?? {}, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(opts.stdin ?? '');
  });
}
