import type { Settings } from '../config/settings.js';

/**
 * Named fault points for the crash-matrix tests (test/crash.test.ts). Inert unless the setting
 * DROPSHIP_TEST_CRASH_AT names the point: then the process SIGKILLs itself there (mode `kill`, the
 * CLI in a child process) or the caller hangs forever (mode `hang`, a Lambda handler the test
 * abandons before terminating its database connections). Never set it in production.
 */
export type CrashPoint = NonNullable<Settings['DROPSHIP_TEST_CRASH_AT']>;

type Listener = (point: CrashPoint) => void;
const listeners = new Set<Listener>();

/** Tests: called when a hanging crash point is reached (the handler is then abandoned). */
export function onCrashPoint(fn: Listener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export async function crashPoint(
  settings: Pick<Settings, 'DROPSHIP_TEST_CRASH_AT' | 'DROPSHIP_TEST_CRASH_MODE'>,
  point: CrashPoint,
): Promise<void> {
  if (settings.DROPSHIP_TEST_CRASH_AT !== point) return;
  if (settings.DROPSHIP_TEST_CRASH_MODE === 'kill') {
    process.kill(process.pid, 'SIGKILL');
  }
  for (const fn of listeners) fn(point);
  await new Promise<never>(() => {});
}
